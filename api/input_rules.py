"""One rule per client-supplied value, the same over HTTP and WebSocket.

Every identifier, number and decimal a client sends (body fields, query and path
parameters, the Idempotency-Key header, WebSocket query parameters) is checked here
before it reaches Postgres, Redis or the workers' arithmetic. Each check raises
`RequestError` naming the field and saying why; HTTP answers it 422 (404 for a path
that then names nothing), a WebSocket closes 1008 with the message as its reason.

Pure functions of their input: no I/O, so tests/unit/test_input_rules.py covers them all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from api.request_error import RequestError
from domain.tokens import TOKENS

T = TypeVar("T")

MAX_ID_LENGTH = 128
# The store's column types (db/migrations/0001_event_log.sql): a version is an `integer`,
# a position a `bigint`. A resume point past them can name no event: refused, not
# compared (Postgres would compare it as numeric and find nothing, leaving a socket silent).
MAX_VERSION = 2**31 - 1
MAX_POSITION = 2**63 - 1

# C0 and C1 control characters (Unicode category Cc): Postgres cannot store NUL, and none
# belongs in an id a person or a program chose. Everything else (any script, emoji, spaces
# inside) is allowed.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A decimal as a JSON number is written (leading zeros allowed), ASCII only: Python's
# Decimal also takes "1_000", " 1.5 ", "NaN", "Infinity", ".5" and other scripts' digits.
PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_EXAMPLE_UUID = "6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# The same rule written for the OpenAPI document (JSON Schema `pattern`, with min/max length).
IDENTIFIER_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"


def identifier(field: str, value: str) -> str:
    """userId, clientOrderId, Idempotency-Key: 1 to 128 characters, not blank, no control
    characters. Returns the value unchanged."""
    if not 1 <= len(value) <= MAX_ID_LENGTH or not value.strip():
        raise RequestError(f"{field} must be 1 to {MAX_ID_LENGTH} characters, not blank", field=field)
    control = _CONTROL.search(value)
    if control is not None:
        raise RequestError(
            f"{field} must not contain control characters (found U+{ord(control.group()):04X})", field=field
        )
    return value


def header_identifier(field: str, value: str) -> str:
    """`identifier` for a header value, returned exactly as received (the order id derived
    from an idempotency key must not change). Servers hand headers over decoded as Latin-1,
    so a UTF-8 key arrives as mojibake whose bytes 0x80-0x9F look like C1 controls: the
    characters are checked as the client meant them (UTF-8 when the bytes are UTF-8)."""
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise RequestError(f"{field} must be 1 to {MAX_ID_LENGTH} characters, not blank", field=field)
    try:
        meant = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        meant = value
    identifier(field, meant)
    return value


def token_symbol(field: str, value: str) -> str:
    """tokenIn, tokenOut, a price's or a launch's token: one of the known symbols."""
    if value not in TOKENS:
        raise RequestError(f"unknown token {value!r}; known tokens: {', '.join(sorted(TOKENS))}", field=field)
    return value


def order_id(field: str, value: str) -> str:
    """An order id: a UUID in its usual 8-4-4-4-12 hex form (either case); returned
    lower-case, as the engine stores it."""
    if _UUID.fullmatch(value) is None:
        raise RequestError(f"{field} must be a UUID such as {_EXAMPLE_UUID}", field=field)
    return str(uuid.UUID(value))


def whole_number(field: str, value: str, maximum: int, minimum: int = 0) -> int:
    """ASCII digits only (no sign, spaces, underscores, exponent or other scripts' digits),
    from `minimum` to `maximum`."""
    digits = value.lstrip("0") or "0"
    # Compared by length first: int() refuses a string of over 4,300 digits with ValueError.
    if (
        _WHOLE_NUMBER.fullmatch(value) is None
        or len(digits) > len(str(maximum))
        or not minimum <= int(digits) <= maximum
    ):
        raise RequestError(f"{field} must be a whole number from {minimum} to {maximum}", field=field)
    return int(digits)


def plain_decimal(field: str, text: str, what: str = "") -> Decimal:
    """A decimal sent as a string, written as a JSON number would be; `what` completes the
    message ("greater than 0")."""
    if PLAIN_DECIMAL.fullmatch(text) is None:
        raise RequestError(
            f'{field} must be a plain decimal{" " + what if what else ""}, e.g. "1.5" '
            "(ASCII digits, no spaces, underscores, NaN or Infinity)",
            field=field,
        )
    return Decimal(text)


def in_path(check: Callable[[str, str], T], field: str, value: str) -> T:
    """A path parameter that fails its field's rule names nothing: the refusal becomes a 404
    (`not_found`) with the field and the reason (a body field or query parameter gets 422)."""
    try:
        return check(field, value)
    except RequestError as exc:
        raise RequestError(exc.message, field=exc.field, code="not_found") from None

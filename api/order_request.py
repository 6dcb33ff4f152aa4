"""The body of `POST /api/orders/execute` (and the market bodies and the order list's
query), validated field by field.

Decoded by hand with msgspec (not Litestar's automatic DTO) so every error
names the offending field and says why, instead of Litestar's `"key": "data"`.
The same types are what /schema documents (api/schemas.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from api.input_rules import (
    IDENTIFIER_PATTERN,
    MAX_ID_LENGTH,
    identifier,
    plain_decimal,
    token_symbol,
    whole_number,
)
from api.request_error import RequestError
from domain.tokens import TOKENS

__all__ = ["RequestError"]  # raised by every parser here; defined in api/request_error.py

T = TypeVar("T")


# OrderRequest's annotations only document (the OpenAPI schema at /schema is generated from
# these types); none constrains decoding, so every check stays in `_check`, whose errors name
# the field.
TokenSymbol = Annotated[str, Meta(description="A token symbol", extra_json_schema={"enum": sorted(TOKENS)})]
# userId, clientOrderId (and the Idempotency-Key header): api/input_rules.py `identifier`.
Id128 = Annotated[
    str, Meta(extra_json_schema={"minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": IDENTIFIER_PATTERN})
]


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    userId: Annotated[
        Id128 | None,
        Meta(description="Required when the API runs open; with an API key, the key's user is used instead"),
    ] = None
    orderType: Literal["market", "limit", "sniper"]
    tokenIn: TokenSymbol
    tokenOut: Annotated[TokenSymbol, Meta(description="A token symbol other than tokenIn")]
    amount: Annotated[Decimal, Meta(description="Units of tokenIn to sell, greater than 0", examples=["1.5"])]
    limitPrice: Annotated[
        Decimal | None,
        Meta(description="Limit orders only, and required there: the least tokenOut per tokenIn to accept"),
    ] = None
    slippageTolerance: Annotated[
        Decimal | None,
        Meta(
            description="Fraction the fill may fall short of the quote, from 0 to MAX_SLIPPAGE "
            "(default DEFAULT_SLIPPAGE)"
        ),
    ] = None
    expiresAt: Annotated[
        datetime | None,
        Meta(
            description="Limit orders only: when it expires if not executing by then; with a timezone, "
            "in the future, at most LIMIT_MAX_TTL_S ahead (default now + LIMIT_DEFAULT_TTL_S)",
            extra_json_schema={"format": "date-time"},
        ),
    ] = None
    # The client's own id for the order; like an Idempotency-Key header, the same one
    # from the same user always names the same order.
    clientOrderId: Annotated[
        Id128 | None,
        Meta(description="The client's own id: the same one from the same user always names the same order"),
    ] = None


_decoder = msgspec.json.Decoder(OrderRequest)
_AT_FIELD = re.compile(r"`\$\.(\w+)")
_MISSING = re.compile(r"missing required field `(\w+)`")
_UNKNOWN = re.compile(r"unknown field `(\w+)`")


def parse_order_request(
    body: bytes,
    *,
    max_slippage: Decimal,
    default_slippage: Decimal,
    now: datetime | None = None,
    default_ttl: timedelta = timedelta(hours=1),
    max_ttl: timedelta = timedelta(days=7),
    caller: str | None = None,
) -> OrderRequest:
    """Decode and check the body; raises RequestError naming the field.

    A limit order without `expiresAt` gets `now + default_ttl`; other orders never expire.
    An authenticated `caller` is the order's user, whatever `userId` the body gives.
    """
    if not body.strip():
        raise RequestError("request body is empty: send a JSON object", code="malformed_json")
    try:
        request = _decode(_decoder, body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        for pattern, code in (
            (_MISSING, "missing_field"),
            (_UNKNOWN, "unknown_field"),
            (_AT_FIELD, "invalid_field"),
        ):
            match = pattern.search(text)
            if match:
                raise RequestError(_humanise(text), field=match.group(1), code=code) from None
        raise RequestError(_humanise(text), code="invalid_request") from None
    except msgspec.DecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}", code="malformed_json") from None
    if caller is not None:
        request = msgspec.structs.replace(request, userId=caller)
    elif request.userId is None:
        raise RequestError("missing required field `userId`", field="userId", code="missing_field")
    _check_decimal_texts(body, max_slippage)
    _check(request, max_slippage)
    if request.slippageTolerance is None:
        request = msgspec.structs.replace(request, slippageTolerance=default_slippage)
    if request.orderType == "limit" and now is not None:
        request = msgspec.structs.replace(
            request, expiresAt=_expiry(request.expiresAt, now, default_ttl, max_ttl)
        )
    return request


def _expiry(
    requested: datetime | None, now: datetime, default_ttl: timedelta, max_ttl: timedelta
) -> datetime:
    if requested is None:
        return now + default_ttl
    if requested.tzinfo is None:
        raise RequestError("expiresAt needs a timezone, e.g. 2026-11-24T12:00:00Z", field="expiresAt")
    if requested <= now:
        raise RequestError("expiresAt must be in the future", field="expiresAt")
    if requested > now + max_ttl:
        raise RequestError(f"expiresAt may be at most {max_ttl} from now", field="expiresAt")
    return requested


def _humanise(text: str) -> str:
    return text.replace("`$.", "`")


def _decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """msgspec's decode, with a body that is not UTF-8 refused as malformed (msgspec raises
    UnicodeDecodeError for invalid UTF-8 inside a string, which would be a 500)."""
    try:
        return decoder.decode(body)
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"malformed JSON: the body is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} in a string)",
            code="malformed_json",
        ) from None


_DECIMAL_FIELDS = ("amount", "limitPrice", "slippageTolerance")


def _check_decimal_texts(body: bytes, max_slippage: Decimal) -> None:
    """A decimal sent as a string must be written as a JSON number would be: msgspec (like
    Python's Decimal) also reads "1_000", " 1.5 " and "NaN". A JSON number is exact already."""
    raw = msgspec.json.decode(body)  # valid: the typed decode has just read it
    for field in _DECIMAL_FIELDS:
        text = raw.get(field)
        if isinstance(text, str):
            if field == "slippageTolerance":
                plain_decimal(field, text, what=f"between 0 and {max_slippage}")
            else:
                plain_decimal(field, text, what="greater than 0")


def _check(r: OrderRequest, max_slippage: Decimal) -> None:
    if r.userId is None:
        raise RequestError("missing required field `userId`", field="userId", code="missing_field")
    identifier("userId", r.userId)
    for field, symbol in (("tokenIn", r.tokenIn), ("tokenOut", r.tokenOut)):
        _known_token(symbol, field)
    if r.tokenIn == r.tokenOut:
        raise RequestError("tokenOut must differ from tokenIn", field="tokenOut")
    _positive("amount", r.amount)
    if r.orderType == "limit":
        if r.limitPrice is None:
            raise RequestError("limitPrice is required for a limit order", field="limitPrice")
        _positive("limitPrice", r.limitPrice)
    elif r.limitPrice is not None:
        raise RequestError(f"limitPrice only applies to limit orders, not {r.orderType}", field="limitPrice")
    if r.clientOrderId is not None:
        identifier("clientOrderId", r.clientOrderId)
    if r.expiresAt is not None and r.orderType != "limit":
        raise RequestError(f"expiresAt only applies to limit orders, not {r.orderType}", field="expiresAt")
    if r.slippageTolerance is not None:
        s = r.slippageTolerance
        if not s.is_finite() or s < 0 or s > max_slippage:
            raise RequestError(
                f"slippageTolerance must be between 0 and {max_slippage}", field="slippageTolerance"
            )
        _storable("slippageTolerance", s)


def _known_token(symbol: str, field: str) -> None:
    token_symbol(field, symbol)


# Every decimal an order or a price carries ends up in the read model's `numeric` columns
# (at most 16383 decimal places) and in the workers' arithmetic: one that cannot be stored
# would stop the projection for every order after it, so it is refused at the door.
MAX_DECIMAL = Decimal("1e15")
MAX_DECIMAL_PLACES = 18


def _positive(field: str, value: Decimal) -> None:
    if not value.is_finite() or value <= 0:
        raise RequestError(f"{field} must be a number greater than 0", field=field)
    if value > MAX_DECIMAL:
        raise RequestError(f"{field} is too large", field=field)
    _storable(field, value)


def _storable(field: str, value: Decimal) -> None:
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the callers
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if -(exponent + trailing_zeros) > MAX_DECIMAL_PLACES:
        raise RequestError(f"{field} may have at most {MAX_DECIMAL_PLACES} decimal places", field=field)


PriceUpdate = Annotated[
    dict[TokenSymbol, Annotated[str | int | float, Meta(description="USD price, greater than 0")]],
    Meta(
        description="USD prices of known tokens, each greater than 0", extra_json_schema={"minProperties": 1}
    ),
]


def parse_market_prices(body: bytes) -> dict[str, Decimal]:
    """`{"SOL": "160", …}`: USD prices for known tokens, each > 0; RequestError naming the token."""
    try:
        # Values decoded one by one: msgspec names a bad dict value only as `$[...]`.
        items = _decode(_prices_decoder, body or b"{}")
    except msgspec.ValidationError:
        raise RequestError('expected an object of token prices, e.g. {"SOL": "160"}') from None
    except msgspec.DecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}", code="malformed_json") from None
    raw: dict[str, Decimal] = {}
    for symbol, value in items.items():
        _known_token(symbol, symbol)
        if isinstance(value, str):
            raw[symbol] = plain_decimal(symbol, value, what="greater than 0")
        else:  # a JSON number (an int, or a float whose shortest text is its decimal)
            raw[symbol] = Decimal(str(value))
    if not raw:
        raise RequestError('give at least one token price, e.g. {"SOL": "160"}')
    for symbol, price in raw.items():
        _positive(symbol, price)
    return raw


_prices_decoder = msgspec.json.Decoder(PriceUpdate)


class LaunchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: Annotated[TokenSymbol, Meta(description="The token to launch (its pools open)")]


def parse_launch_request(body: bytes) -> str:
    """`{"token": "LAUNCH"}`: a known token; RequestError naming the field."""
    try:
        request = _decode(_launch_decoder, body or b"{}")
    except msgspec.ValidationError as exc:
        raise RequestError(_humanise(str(exc)), field="token") from None
    except msgspec.DecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}", code="malformed_json") from None
    _known_token(request.token, "token")
    return request.token


_launch_decoder = msgspec.json.Decoder(LaunchRequest)


# The statuses an order can be listed by (every status but `new`, which no stored order has).
OrderStatus = Literal[
    "pending", "waiting", "routing", "building", "submitted", "confirmed", "failed", "cancelled", "expired"
]
MAX_PAGE = 200


class OrderListQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The query of `GET /api/orders`: decoded by `parse_list_query` and documented from this type."""

    # The body's rule (api/input_rules.py): no stored userId breaks it, and Postgres cannot
    # compare text with a NUL in it.
    userId: (
        Annotated[Id128, Meta(description="Only this user's orders (with an API key, its own)")] | UnsetType
    ) = UNSET
    status: Annotated[OrderStatus, Meta(description="Only orders in this status")] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE, description="Orders per page")] = 50
    cursor: Annotated[str, Meta(description="The nextCursor of the previous page")] | UnsetType = UNSET


def parse_list_query(params: Mapping[str, str]) -> OrderListQuery:
    """Query parameters (strings) converted to their types; RequestError naming a bad one."""
    if "userId" in params:
        identifier("userId", params["userId"])
    if "limit" in params:  # digits only, as every whole number in a URL (msgspec also reads "1e1")
        whole_number("limit", params["limit"], maximum=MAX_PAGE, minimum=1)
    try:
        # strict=False: a query value is always a string, "50" must become the int 50.
        return msgspec.convert({key: params[key] for key in params}, OrderListQuery, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT_FIELD.search(text)
        raise RequestError(_humanise(text), field=match.group(1) if match else None) from None

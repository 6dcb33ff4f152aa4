"""One rule per client-supplied value (api/input_rules.py), and the parsers that apply it:
each refusal names its field and says why, instead of a 500 or a silent acceptance (issue 13)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from adapters.redis_rate_limit import interval_us
from adapters.settings import Settings
from api.input_rules import (
    MAX_POSITION,
    MAX_VERSION,
    header_identifier,
    identifier,
    in_path,
    order_id,
    plain_decimal,
    whole_number,
)
from api.order_placing import order_request
from api.order_request import parse_launch_request, parse_list_query, parse_market_prices, parse_order_request
from api.request_error import RequestError

ORDER = {"userId": "rules-user", "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"}


def refusal(call: object, *args: object, **kwargs: object) -> RequestError:
    assert callable(call)
    with pytest.raises(RequestError) as raised:
        call(*args, **kwargs)
    return raised.value


def parse(body: bytes | dict[str, object]) -> object:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_order_request(raw, max_slippage=Decimal("0.5"), default_slippage=Decimal("0.01"))


# --- identifiers: userId, clientOrderId, Idempotency-Key ------------------------------------


@pytest.mark.parametrize("value", ["alice", "a" * 128, "user 1", "ユーザー", "émile-😀"])
def test_an_identifier_of_1_to_128_printable_characters_is_accepted(value: str) -> None:
    assert identifier("userId", value) == value


@pytest.mark.parametrize("value", ["", " ", "\t ", "a" * 129])
def test_an_identifier_that_is_empty_blank_or_too_long_is_refused_naming_the_field(value: str) -> None:
    error = refusal(identifier, "userId", value)
    assert error.field == "userId" and "1 to 128" in error.message


@pytest.mark.parametrize("char", ["\x00", "\x01", "\n", "\x1f", "\x7f", "\x85", "\x9f"])
def test_an_identifier_with_a_control_character_is_refused_saying_which(char: str) -> None:
    error = refusal(identifier, "clientOrderId", f"a{char}b")
    assert error.field == "clientOrderId"
    assert f"U+{ord(char):04X}" in error.message


@pytest.mark.parametrize("field", ["userId", "clientOrderId"])
def test_every_identifier_in_the_body_refuses_nul_alike(field: str) -> None:
    # Before: userId with NUL was refused, clientOrderId with NUL accepted.
    error = refusal(parse, {**ORDER, field: "a\x00b"})
    assert error.field == field and "control characters" in error.message


def test_a_blank_client_order_id_is_refused() -> None:
    assert refusal(parse, {**ORDER, "clientOrderId": "   "}).field == "clientOrderId"


def test_an_idempotency_key_sent_as_utf8_is_accepted_and_kept_as_received() -> None:
    as_received = "ключ-1".encode().decode("latin-1")  # how the server hands the header over
    assert "\x8e" in as_received  # ю is D1 8E: a C1 control once read as Latin-1
    assert header_identifier("Idempotency-Key", as_received) == as_received


def test_an_idempotency_key_with_a_tab_is_refused() -> None:
    assert refusal(header_identifier, "Idempotency-Key", "a\tb").field == "Idempotency-Key"


def test_an_empty_idempotency_key_header_is_refused_naming_the_header() -> None:
    # Before: `idempotency_key or clientOrderId` ignored an empty header silently.
    error = refusal(order_request, Settings(), json.dumps(ORDER).encode(), caller=None, idempotency_key="")
    assert error.field == "Idempotency-Key" and error.code == "invalid_request"


def test_an_idempotency_key_header_wins_over_client_order_id() -> None:
    body = json.dumps({**ORDER, "clientOrderId": "from-body"}).encode()
    request = order_request(Settings(), body, caller=None, idempotency_key="from-header")
    assert request.idempotency_key == "from-header"


def test_the_list_query_user_id_follows_the_body_rule() -> None:
    assert refusal(parse_list_query, {"userId": "a" * 129}).field == "userId"
    assert refusal(parse_list_query, {"userId": "a\x00"}).field == "userId"


# --- order ids ---------------------------------------------------------------------------


def test_an_order_id_is_a_uuid_in_its_usual_form_and_comes_back_lower_case() -> None:
    assert (
        order_id("orderId", "6F1B8A2E-3C4D-4E5F-9A0B-1C2D3E4F5A6B") == "6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b"
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "nope",
        "a\x00b",
        "{6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b}",  # uuid.UUID accepts these three
        "urn:uuid:6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b",
        "6f1b8a2e3c4d4e5f9a0b1c2d3e4f5a6b",
    ],
)
def test_anything_else_is_not_an_order_id(value: str) -> None:
    assert refusal(order_id, "orderId", value).field == "orderId"


def test_a_path_parameter_that_fails_its_rule_is_not_found_with_the_field_and_reason() -> None:
    error = refusal(in_path, identifier, "userId", "a\x00b")
    assert (error.code, error.field) == ("not_found", "userId") and "control" in error.message


# --- whole numbers: fromVersion, fromPosition, lastEventId, limit ----------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("0", 0), ("7", 7), ("007", 7), (str(MAX_VERSION), MAX_VERSION)]
)
def test_a_whole_number_in_range_is_accepted(value: str, expected: int) -> None:
    assert whole_number("fromVersion", value, MAX_VERSION) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-1",
        "+1",
        " 1",
        "1_0",
        "1e3",
        "1.0",
        "²",  # str.isdigit() says yes, int() says no: the socket closed 1011
        "١",  # Arabic-Indic one: str.isdigit() and int() both said yes
        str(MAX_VERSION + 1),  # 2147483648: closed 1000 with nothing sent
        "1180591620717411303424",  # left the socket open and silent
        "9" * 5000,  # past int()'s 4,300-digit limit: a ValueError, not a refusal
    ],
)
def test_anything_else_is_refused_with_the_range(value: str) -> None:
    error = refusal(whole_number, "fromVersion", value, MAX_VERSION)
    assert error.field == "fromVersion" and f"0 to {MAX_VERSION}" in error.message


def test_a_position_may_go_up_to_the_bigint_range_and_no_further() -> None:
    assert whole_number("fromPosition", str(MAX_POSITION), MAX_POSITION) == 2**63 - 1
    assert refusal(whole_number, "fromPosition", "9223372036854775808", MAX_POSITION).field == "fromPosition"


@pytest.mark.parametrize("value", ["1e1", "5.0", " 5", "0", "201"])
def test_the_list_limit_follows_the_same_rule(value: str) -> None:
    assert refusal(parse_list_query, {"limit": value}).field == "limit"


# --- decimals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("1.5", "1.5"), ("2", "2"), ("01.50", "1.50"), ("2e-3", "0.002")]
)
def test_a_plain_decimal_string_is_accepted(text: str, value: str) -> None:
    assert plain_decimal("amount", text) == Decimal(value)


@pytest.mark.parametrize(
    "text", ["1_000", " 1.5 ", "1.5 ", "+1", ".5", "1.", "NaN", "Infinity", "١", "0x10", ""]
)
def test_anything_python_s_decimal_reads_beyond_plain_decimals_is_refused(text: str) -> None:
    assert refusal(plain_decimal, "amount", text).field == "amount"


@pytest.mark.parametrize("field", ["amount", "limitPrice", "slippageTolerance"])
@pytest.mark.parametrize("text", ["1_000", " 1.5 "])
def test_every_decimal_field_of_an_order_refuses_underscores_and_spaces(field: str, text: str) -> None:
    body = {**ORDER, "orderType": "limit", "limitPrice": "150", field: text}
    assert refusal(parse, body).field == field


def test_a_decimal_as_a_json_number_is_still_accepted() -> None:
    raw = b'{"userId":"u","orderType":"market","tokenIn":"SOL","tokenOut":"USDC","amount":1.5e0}'
    assert parse(raw).amount == Decimal("1.5")  # type: ignore[attr-defined]


def test_a_market_price_string_must_be_a_plain_decimal() -> None:
    assert refusal(parse_market_prices, b'{"SOL": "1_60"}').field == "SOL"
    assert parse_market_prices(b'{"SOL": "160", "USDC": 1}') == {"SOL": Decimal("160"), "USDC": Decimal("1")}


# --- bodies that are not UTF-8 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "body"),
    [
        (
            parse,
            b'{"userId":"u","orderType":"market","tokenIn":"SOL","tokenOut":"USDC","amount":"1\xff\xfe"}',
        ),
        (parse, b'{"userId":"\xc3","orderType":"market","tokenIn":"SOL","tokenOut":"USDC","amount":"1"}'),
        (parse_market_prices, b'{"SOL": "1\xff"}'),
        (parse_launch_request, b'{"token": "\xffLAUNCH"}'),
    ],
    ids=["order-amount", "order-user", "prices", "launch"],
)
def test_a_body_that_is_not_utf8_is_malformed_json_not_a_500(call: object, body: bytes) -> None:
    # Before: msgspec's UnicodeDecodeError escaped every parser as a 500.
    error = refusal(call, body)
    assert (error.code, error.field) == ("malformed_json", None) and "UTF-8" in error.message


# --- the rate limiter's arithmetic -----------------------------------------------------------


@pytest.mark.parametrize(
    ("per_minute", "expected"),
    [(0, 0), (60, 1_000_000), (7, 8_571_429), (100_000, 600), (600_000, 100), (6_000_000, 10)],
)
def test_the_rate_limiters_interval_is_whole_microseconds_rounded_up(per_minute: int, expected: int) -> None:
    interval = interval_us(per_minute)
    assert isinstance(interval, int) and interval == expected

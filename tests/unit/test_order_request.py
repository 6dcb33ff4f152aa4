"""`POST /api/orders/execute` bodies: what is accepted, and each refusal naming its field."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from api.order_request import OrderRequest, RequestError, parse_order_request

MAX_SLIPPAGE = Decimal("0.05")
DEFAULT_SLIPPAGE = Decimal("0.01")


def body(**fields: object) -> dict[str, object]:
    """The brief's example body, with overrides; a value of `...` drops the field."""
    base: dict[str, object] = {
        "userId": "user-1",
        "orderType": "market",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amount": 1.5,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def parse(raw: bytes | dict[str, object]) -> OrderRequest:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    return parse_order_request(data, max_slippage=MAX_SLIPPAGE, default_slippage=DEFAULT_SLIPPAGE)


def rejection(raw: bytes | dict[str, object]) -> RequestError:
    with pytest.raises(RequestError) as raised:
        parse(raw)
    return raised.value


# --- accepted -----------------------------------------------------------------------


def test_brief_body_with_amount_as_a_json_number_is_accepted() -> None:
    request = parse(body(amount=1.5))
    assert request == OrderRequest(
        userId="user-1",
        orderType="market",
        tokenIn="SOL",
        tokenOut="USDC",
        amount=Decimal("1.5"),
        slippageTolerance=DEFAULT_SLIPPAGE,
    )


def test_amount_as_a_json_string_is_accepted() -> None:
    assert parse(body(amount="1.5")).amount == Decimal("1.5")


def test_json_number_amount_keeps_its_exact_decimal_digits() -> None:
    # 0.1 must not pass through a binary float on the way to Decimal.
    raw = b'{"userId":"u","orderType":"market","tokenIn":"SOL","tokenOut":"USDC","amount":0.1}'
    assert parse(raw).amount == Decimal("0.1")


def test_default_slippage_applies_when_none_is_sent() -> None:
    assert parse(body()).slippageTolerance == DEFAULT_SLIPPAGE


def test_explicit_slippage_is_kept() -> None:
    assert parse(body(slippageTolerance="0.02")).slippageTolerance == Decimal("0.02")


def test_slippage_equal_to_the_max_is_accepted() -> None:
    assert parse(body(slippageTolerance=str(MAX_SLIPPAGE))).slippageTolerance == MAX_SLIPPAGE


def test_limit_order_with_limit_price_is_accepted() -> None:
    request = parse(body(orderType="limit", limitPrice="155.5"))
    assert (request.orderType, request.limitPrice) == ("limit", Decimal("155.5"))


def test_sniper_order_is_accepted() -> None:
    assert parse(body(orderType="sniper")).orderType == "sniper"


# --- refused, naming the field --------------------------------------------------------


@pytest.mark.parametrize("field", ["userId", "orderType", "tokenIn", "tokenOut", "amount"])
def test_missing_required_field_is_named(field: str) -> None:
    error = rejection(body(**{field: ...}))
    assert (error.field, error.code) == (field, "missing_field")
    assert field in error.message


@pytest.mark.parametrize("amount", [0, -1, "0", "-0.5"])
def test_amount_not_above_zero_is_rejected(amount: object) -> None:
    error = rejection(body(amount=amount))
    assert error.field == "amount"
    assert "greater than 0" in error.message


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_amount_is_rejected(amount: str) -> None:
    assert rejection(body(amount=amount)).field == "amount"


def test_amount_of_the_wrong_json_type_is_rejected() -> None:
    error = rejection(body(amount=True))
    assert (error.field, error.code) == ("amount", "invalid_field")


@pytest.mark.parametrize("field", ["tokenIn", "tokenOut"])
def test_unknown_token_is_rejected_and_named(field: str) -> None:
    error = rejection(body(**{field: "DOGE"}))
    assert error.field == field
    assert "DOGE" in error.message


def test_same_token_in_and_out_is_rejected_on_token_out() -> None:
    error = rejection(body(tokenIn="USDC", tokenOut="USDC"))
    assert error.field == "tokenOut"


def test_unknown_order_type_is_rejected() -> None:
    error = rejection(body(orderType="stop"))
    assert (error.field, error.code) == ("orderType", "invalid_field")


def test_limit_order_without_limit_price_is_rejected() -> None:
    error = rejection(body(orderType="limit"))
    assert error.field == "limitPrice"
    assert "required" in error.message


@pytest.mark.parametrize("limit_price", ["0", "-1", "NaN"])
def test_limit_price_not_above_zero_is_rejected(limit_price: str) -> None:
    assert rejection(body(orderType="limit", limitPrice=limit_price)).field == "limitPrice"


@pytest.mark.parametrize("order_type", ["market", "sniper"])
def test_limit_price_on_a_non_limit_order_is_rejected(order_type: str) -> None:
    error = rejection(body(orderType=order_type, limitPrice="150"))
    assert error.field == "limitPrice"
    assert order_type in error.message


@pytest.mark.parametrize("slippage", ["0.0501", "1", "-0.01", "NaN"])
def test_slippage_outside_zero_to_max_is_rejected(slippage: str) -> None:
    error = rejection(body(slippageTolerance=slippage))
    assert error.field == "slippageTolerance"
    assert str(MAX_SLIPPAGE) in error.message


def test_unknown_field_is_rejected_and_named() -> None:
    error = rejection(body(referrer="bob"))
    assert (error.field, error.code) == ("referrer", "unknown_field")


def test_blank_user_id_is_rejected() -> None:
    assert rejection(body(userId="   ")).field == "userId"


def test_too_large_amount_is_rejected() -> None:
    assert rejection(body(amount="1e16")).field == "amount"


@pytest.mark.parametrize(
    "raw",
    [b'{"userId": "u",', b"not json", b'{"amount": NaN}', b"{'userId': 'u'}"],
    ids=["truncated", "bare-words", "nan-literal", "single-quotes"],
)
def test_malformed_json_has_no_field_and_code_malformed_json(raw: bytes) -> None:
    error = rejection(raw)
    assert (error.field, error.code) == (None, "malformed_json")


@pytest.mark.parametrize("raw", [b"", b"   \n"], ids=["empty", "whitespace"])
def test_empty_body_is_rejected_as_malformed_json(raw: bytes) -> None:
    error = rejection(raw)
    assert (error.field, error.code) == (None, "malformed_json")
    assert "empty" in error.message


@pytest.mark.parametrize("raw", [b"[]", b"null", b"42"])
def test_json_that_is_not_an_object_is_rejected_without_a_field(raw: bytes) -> None:
    error = rejection(raw)
    assert error.field is None
    assert "object" in error.message

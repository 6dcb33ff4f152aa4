"""Events on the wire: tagged JSON with Decimals as strings, decoded back unchanged."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from domain.events import (
    EVENT_TYPES,
    Event,
    OrderAwaitingLaunch,
    OrderBuilding,
    OrderCancelled,
    OrderConfirmed,
    OrderEvent,
    OrderExpired,
    OrderFailed,
    OrderPending,
    OrderRouting,
    OrderSubmitted,
    OrderWaiting,
    Quote,
    RetryScheduled,
    SwapReissued,
    SwapRequested,
    decode_event,
    encode_event,
    event_type,
)

QUOTES = [
    Quote(
        dex="raydium",
        price=Decimal("150.123456789012"),
        fee=Decimal("0.003"),
        liquidity=Decimal("26666.666667"),
        expected_out=Decimal("224.318716950183"),
    ),
    Quote(dex="meteora", price=Decimal("1E+3"), fee=Decimal("0.002"), liquidity=Decimal("0.000001")),
]

SAMPLES: list[Event] = [
    OrderPending(
        order_id="9b2f",
        user_id="user-1",
        order_type="market",
        token_in="SOL",
        token_out="USDC",
        amount=Decimal("1.50"),
        slippage_tolerance=Decimal("0.01"),
    ),
    OrderPending(
        order_id="9b30",
        user_id="user-2",
        order_type="limit",
        token_in="USDC",
        token_out="SOL",
        amount=Decimal("1000"),
        slippage_tolerance=Decimal("0.005"),
        limit_price=Decimal("0.0066"),
    ),
    OrderRouting(
        quotes=QUOTES, chosen_dex="raydium", expected_out=Decimal("224.318716950183"), reason="best net"
    ),
    OrderBuilding(
        dex="raydium",
        expected_out=Decimal("224.318716950183"),
        min_out=Decimal("222.075529780681"),
        actions=["wrap_sol", "swap:raydium"],
    ),
    OrderSubmitted(dex="raydium", tx_hash="5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnb"),
    OrderConfirmed(
        tx_hash="5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnb",
        executed_price=Decimal("149.1"),
        amount_out=Decimal("223.65"),
    ),
    RetryScheduled(step="submit", attempt=2, error="rpc timeout", delay_ms=1000),
    OrderFailed(step="confirm", error="slippage exceeded", attempts=3),
    OrderWaiting(best_dex="meteora", best_price=Decimal("149.123456"), limit_price=Decimal("155")),
    OrderCancelled(reason="cancelled by the user", by="user-1"),
    SwapRequested(dex="raydium", idempotency_key="order-1:swap"),
    SwapRequested(
        dex="meteora",
        idempotency_key="order-1:swap",
        signature="5VERv8NM",
        transaction="AQIDBA==",
        last_valid_block_height=1_000_150,
    ),
    SwapReissued(
        previous_signature="5VERv8NM",
        signature="3QUwM869",
        transaction="BQYH",
        last_valid_block_height=1_000_300,
        reissue=1,
    ),
    OrderAwaitingLaunch(token="LAUNCH"),
    OrderExpired(expires_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC)),
]


def sample_id(event: Event) -> str:
    return type(event).__name__


def walk(value: Any) -> list[Any]:
    """Every leaf value of decoded JSON."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in walk(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in walk(v)]
    return [value]


def test_samples_cover_every_event_type() -> None:
    assert {type(e) for e in SAMPLES} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_event_round_trips_unchanged(event: Event) -> None:
    decoded = decode_event(encode_event(event))
    assert type(decoded) is type(event)
    assert decoded == event


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_round_trip_keeps_decimal_digits_exactly(event: Event) -> None:
    # Equal Decimals can differ in exponent (1.5 vs 1.50); the log must keep what was written.
    decoded = decode_event(encode_event(event))
    assert repr(decoded) == repr(event)


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_round_trip_accepts_the_json_as_text(event: Event) -> None:
    assert decode_event(encode_event(event).decode()) == event


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_type_tag_is_the_class_name(event: Event) -> None:
    data = json.loads(encode_event(event))
    assert data["type"] == type(event).__name__ == event_type(event)
    assert EVENT_TYPES[data["type"]] is type(event)


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_decimals_are_encoded_as_strings_never_floats(event: Event) -> None:
    data = json.loads(encode_event(event), parse_float=lambda text: pytest.fail(f"float in JSON: {text}"))
    assert not any(isinstance(leaf, float) for leaf in walk(data))


def test_decimal_fields_appear_as_their_exact_strings() -> None:
    data = json.loads(encode_event(SAMPLES[0]))
    assert (data["amount"], data["slippage_tolerance"]) == ("1.50", "0.01")
    routed = json.loads(encode_event(SAMPLES[2]))
    assert routed["quotes"][0]["price"] == "150.123456789012"


def test_event_types_lists_every_member_of_the_order_event_union() -> None:
    members = set(typing.get_args(OrderEvent))
    assert set(EVENT_TYPES.values()) == members
    assert all(name == cls.__name__ for name, cls in EVENT_TYPES.items())


def test_unknown_type_tag_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type": "OrderTeleported", "order_id": "x"}')


def test_missing_required_field_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="tx_hash"):
        decode_event(b'{"type": "OrderSubmitted", "dex": "raydium"}')


def test_quote_expected_out_defaults_when_absent() -> None:
    raw = (
        b'{"type":"OrderRouting","chosen_dex":"raydium","expected_out":"1","reason":"r",'
        b'"quotes":[{"dex":"raydium","price":"150","fee":"0.003","liquidity":"10"}]}'
    )
    decoded = decode_event(raw)
    assert isinstance(decoded, OrderRouting)
    assert decoded.quotes[0].expected_out == Decimal(0)

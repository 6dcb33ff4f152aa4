"""What WebSocket clients receive for each event: pinned byte for byte.

The expected texts were produced by the hand-written mapping this module replaced; a
change here is a change of the wire format clients parse (docs/api.md), never a refactor.
(SwapRequested is internal, never sent to a client; its "retrying" is pinned all the same.)
"""

# ruff: noqa: E501  (the pinned texts are one line each, as on the wire)

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from api.client_messages import _DETAILS, event_details
from api.live_entry import order_message_text, user_message_text
from domain.events import (
    EVENT_TYPES,
    Event,
    OrderAwaitingLaunch,
    OrderBuilding,
    OrderCancelled,
    OrderConfirmed,
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
)
from domain.ports import EventMetadata, RecordedEvent

RAYDIUM = Quote(
    dex="raydium",
    price=Decimal("151.2975425659891580856319205"),
    fee=Decimal("0.003"),
    liquidity=Decimal("39641.069836"),
    expected_out=Decimal("226.256939132447"),
)
# Exponent forms, trailing zeros and a defaulted expected_out: Decimals go out as str() gives them.
METEORA = Quote(dex="meteora", price=Decimal("1E+3"), fee=Decimal("0.0020"), liquidity=Decimal("1E-7"))

EXAMPLES: dict[str, Event] = {
    "market": OrderPending(
        order_id="o-1",
        user_id="alice",
        order_type="market",
        token_in="SOL",
        token_out="USDC",
        amount=Decimal("1.50"),
        slippage_tolerance=Decimal("0.01"),
    ),
    "limit": OrderPending(
        order_id="o-2",
        user_id="bob",
        order_type="limit",
        token_in="USDC",
        token_out="SOL",
        amount=Decimal("1000"),
        slippage_tolerance=Decimal("0.005"),
        limit_price=Decimal("0.0066"),
        expires_at=datetime(2026, 11, 24, 21, 23, 55, tzinfo=UTC),
    ),
    "limit-offset": OrderPending(
        order_id="o-3",
        user_id="carol",
        order_type="limit",
        token_in="SOL",
        token_out="USDC",
        amount=Decimal("2"),
        slippage_tolerance=Decimal("0"),
        limit_price=Decimal("250"),
        expires_at=datetime(2026, 11, 24, 23, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    ),
    "waiting": OrderWaiting(
        best_dex="raydium", best_price=Decimal("155.550774709014"), limit_price=Decimal("250")
    ),
    "awaiting-launch": OrderAwaitingLaunch(token="LAUNCH"),
    "routing": OrderRouting(
        quotes=[RAYDIUM, METEORA],
        chosen_dex="raydium",
        expected_out=Decimal("226.256939132447"),
        reason="raydium nets 226.256939132447 vs meteora 222.126005167322 (+4.130933965125)",
    ),
    "building": OrderBuilding(
        dex="raydium",
        expected_out=Decimal("226.256939132447"),
        min_out=Decimal("223.994369741122"),
        actions=["wrap_sol", "swap:raydium"],
    ),
    "building-requoted": OrderBuilding(
        dex="meteora", expected_out=Decimal("5"), min_out=Decimal("4.95"), actions=[], quote=METEORA
    ),
    "swap-requested": SwapRequested(dex="raydium", idempotency_key="o-1:swap"),
    "submitted": OrderSubmitted(
        dex="raydium",
        tx_hash="3QUwM869X2SV",
        explorer_url="https://explorer.solana.com/tx/3QUwM869X2SV?cluster=devnet",
    ),
    "submitted-no-link": OrderSubmitted(dex="meteora", tx_hash="5VERv8NM"),
    "confirmed": OrderConfirmed(
        tx_hash="3QUwM869X2SV",
        executed_price=Decimal("150.340265771692"),
        amount_out=Decimal("225.510398657538"),
    ),
    "routing-onchain": OrderRouting(
        quotes=[
            Quote(
                dex="raydium",
                price=Decimal("150.12"),
                fee=Decimal("0.0025"),
                liquidity=Decimal("1000"),
                expected_out=Decimal("149.5"),
                quoted_amount=Decimal("1"),
                price_impact=Decimal("0.000998"),
                pool="7Ab3",
                slot=1234,
            )
        ],
        chosen_dex="raydium",
        expected_out=Decimal("149.5"),
        reason="only raydium answered: net 149.5",
        unavailable={"meteora": "meteora: pool 9xQ is disabled (pool_status 1)"},
    ),
    "building-onchain": OrderBuilding(
        dex="raydium",
        expected_out=Decimal("149.5"),
        min_out=Decimal("148"),
        actions=["wrap_sol", "swap:raydium", "unwrap_sol"],
        compute_units=84_000,
        priority_fee=1_000,
    ),
    "swap-reissued": SwapReissued(
        previous_signature="3QUwM869X2SV",
        signature="4xyz",
        transaction="AQID",
        last_valid_block_height=900,
        reissue=1,
    ),
    "confirmed-onchain": OrderConfirmed(
        tx_hash="4xyz",
        executed_price=Decimal("149.6"),
        amount_out=Decimal("149.6"),
        slot=1240,
        fee_paid=Decimal("0.000005084"),
        amount_in=Decimal("1"),
        explorer_url="https://explorer.solana.com/tx/4xyz?cluster=devnet",
    ),
    "retry": RetryScheduled(
        step="submit", attempt=1, error='raydium: RPC error "sending" transaction\n', delay_ms=209
    ),
    "failed": OrderFailed(step="submit", error="gave up after 2 attempts — ünïcode", attempts=2),
    "cancelled": OrderCancelled(reason="cancelled by the user", by="user"),
    "expired": OrderExpired(expires_at=datetime(2026, 11, 24, 21, 23, 55, tzinfo=UTC)),
}

ENVELOPE = '{{"orderId":"fec9f08c","status":"{status}","timestamp":"2026-11-24T21:21:47.368289+00:00","details":{details},"version":7,"type":"{type}"'

# (status, details) as clients receive them today.
EXPECTED: dict[str, tuple[str, str]] = {
    "market": (
        "pending",
        '{"userId":"alice","orderType":"market","tokenIn":"SOL","tokenOut":"USDC","amount":"1.50","limitPrice":null,"slippageTolerance":"0.01","expiresAt":null}',
    ),
    "limit": (
        "pending",
        '{"userId":"bob","orderType":"limit","tokenIn":"USDC","tokenOut":"SOL","amount":"1000","limitPrice":"0.0066","slippageTolerance":"0.005","expiresAt":"2026-11-24T21:23:55+00:00"}',
    ),
    "limit-offset": (
        "pending",
        '{"userId":"carol","orderType":"limit","tokenIn":"SOL","tokenOut":"USDC","amount":"2","limitPrice":"250","slippageTolerance":"0","expiresAt":"2026-11-24T23:00:00.123456+02:00"}',
    ),
    "waiting": ("waiting", '{"bestDex":"raydium","bestPrice":"155.550774709014","limitPrice":"250"}'),
    "awaiting-launch": ("waiting", '{"token":"LAUNCH"}'),
    "routing": (
        "routing",
        '{"quotes":[{"dex":"raydium","price":"151.2975425659891580856319205","fee":"0.003","liquidity":"39641.069836","expectedOut":"226.256939132447"},{"dex":"meteora","price":"1E+3","fee":"0.0020","liquidity":"1E-7","expectedOut":"0"}],"chosenDex":"raydium","expectedOut":"226.256939132447","reason":"raydium nets 226.256939132447 vs meteora 222.126005167322 (+4.130933965125)"}',
    ),
    "building": (
        "building",
        '{"dex":"raydium","expectedOut":"226.256939132447","minOut":"223.994369741122","actions":["wrap_sol","swap:raydium"],"quote":null}',
    ),
    "building-requoted": (
        "building",
        '{"dex":"meteora","expectedOut":"5","minOut":"4.95","actions":[],"quote":{"dex":"meteora","price":"1E+3","fee":"0.0020","liquidity":"1E-7","expectedOut":"0"}}',
    ),
    "swap-requested": ("retrying", '{"dex":"raydium"}'),
    "submitted": (
        "submitted",
        '{"dex":"raydium","txHash":"3QUwM869X2SV","explorerUrl":"https://explorer.solana.com/tx/3QUwM869X2SV?cluster=devnet"}',
    ),
    "submitted-no-link": ("submitted", '{"dex":"meteora","txHash":"5VERv8NM","explorerUrl":null}'),
    "confirmed": (
        "confirmed",
        '{"txHash":"3QUwM869X2SV","executedPrice":"150.340265771692","amountOut":"225.510398657538"}',
    ),
    "routing-onchain": (
        "routing",
        '{"quotes":[{"dex":"raydium","price":"150.12","fee":"0.0025","liquidity":"1000","expectedOut":"149.5","priceImpact":"0.000998","pool":"7Ab3","slot":1234}],"chosenDex":"raydium","expectedOut":"149.5","reason":"only raydium answered: net 149.5","unavailable":{"meteora":"meteora: pool 9xQ is disabled (pool_status 1)"}}',
    ),
    "building-onchain": (
        "building",
        '{"dex":"raydium","expectedOut":"149.5","minOut":"148","actions":["wrap_sol","swap:raydium","unwrap_sol"],"quote":null,"computeUnits":84000,"priorityFee":1000}',
    ),
    "swap-reissued": ("submitted", '{"txHash":"4xyz","replaces":"3QUwM869X2SV","reissue":1}'),
    "confirmed-onchain": (
        "confirmed",
        '{"txHash":"4xyz","executedPrice":"149.6","amountOut":"149.6","slot":1240,"feePaid":"0.000005084","amountIn":"1","explorerUrl":"https://explorer.solana.com/tx/4xyz?cluster=devnet"}',
    ),
    "retry": (
        "retrying",
        '{"step":"submit","attempt":1,"error":"raydium: RPC error \\"sending\\" transaction\\n","retryInMs":209}',
    ),
    "failed": ("failed", '{"step":"submit","error":"gave up after 2 attempts — ünïcode","attempts":2}'),
    "cancelled": ("cancelled", '{"reason":"cancelled by the user","by":"user"}'),
    "expired": ("expired", '{"expiresAt":"2026-11-24T21:23:55+00:00"}'),
}


def recorded(event: Event) -> RecordedEvent:
    return RecordedEvent(
        position=1234,
        stream_id="fec9f08c",
        version=7,
        type=type(event).__name__,
        event=event,
        metadata=EventMetadata(correlation_id="fec9f08c", causation_id="c", actor="worker"),
        recorded_at=datetime(2026, 11, 24, 21, 21, 47, 368289, tzinfo=UTC),
    )


def test_the_examples_cover_every_event_type() -> None:
    assert {type(e) for e in EXAMPLES.values()} == set(EVENT_TYPES.values())
    assert set(EXPECTED) == set(EXAMPLES)


def test_every_event_type_has_client_details() -> None:
    # A new event type without its wire type would fail every message of that type.
    assert set(_DETAILS) == set(EVENT_TYPES.values())


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_an_order_stream_message_is_unchanged(name: str) -> None:
    status, details = EXPECTED[name]
    event = EXAMPLES[name]
    expected = ENVELOPE.format(status=status, details=details, type=type(event).__name__) + "}"
    assert order_message_text(recorded(event)) == expected


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_a_user_stream_message_is_unchanged_and_ends_with_the_position(name: str) -> None:
    status, details = EXPECTED[name]
    event = EXAMPLES[name]
    expected = (
        ENVELOPE.format(status=status, details=details, type=type(event).__name__) + ',"position":1234}'
    )
    assert user_message_text(recorded(event)) == expected


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_the_operator_cli_gets_the_same_details_as_a_dict(name: str) -> None:
    assert event_details(EXAMPLES[name]) == json.loads(EXPECTED[name][1])

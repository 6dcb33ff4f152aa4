"""Every fact the engine records about an order.

Events are frozen, tagged msgspec Structs: the tag (the class name) is the
`type` column of the log. Evolution rules (docs/events.md): a new field always
has a default; a field never changes type; a changed meaning is a new event type.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

OrderType = Literal["market", "limit", "sniper"]
Step = Literal["route", "build", "submit", "confirm"]


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """One DEX's answer for a given order size.

    `price` is units of tokenOut per unit of tokenIn before fee and impact;
    `liquidity` is the pool's reserve of tokenIn, which sets the price impact.
    """

    dex: str
    price: Decimal
    fee: Decimal
    liquidity: Decimal
    expected_out: Decimal = Decimal(0)
    # Set by a venue that prices an exact amount with its pool's own curve (the on-chain
    # adapters): `expected_out` is then what the program pays for `quoted_amount`, and
    # routing uses it as is instead of the constant-product estimate.
    quoted_amount: Decimal | None = None
    # Share of the output lost to the order's own size, against the spot price after fee.
    price_impact: Decimal | None = None
    # The pool the quote read, and the slot its state was read at (on-chain venues).
    pool: str | None = None
    slot: int | None = None


class Event(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Base of all order events."""


class OrderPending(Event, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    order_type: OrderType
    token_in: str
    token_out: str
    amount: Decimal
    slippage_tolerance: Decimal
    limit_price: Decimal | None = None
    # Limit orders only: past this instant an order that has not started executing expires.
    expires_at: datetime | None = None


class OrderWaiting(Event, frozen=True, kw_only=True):
    """A limit order is not marketable yet; `best_price` is the best net price seen so far."""

    best_dex: str
    best_price: Decimal
    limit_price: Decimal


class OrderAwaitingLaunch(Event, frozen=True, kw_only=True):
    """A sniper order found no pool for its pair: it waits for the token's launch."""

    token: str


class OrderRouting(Event, frozen=True, kw_only=True):
    quotes: list[Quote]
    chosen_dex: str
    expected_out: Decimal
    reason: str
    # Venues left out of this routing, each with the reason (no quote in time, pool disabled…).
    unavailable: dict[str, str] = {}


class OrderBuilding(Event, frozen=True, kw_only=True):
    dex: str
    expected_out: Decimal
    min_out: Decimal
    actions: list[str]
    # The fresh quote the swap is built on, when the build re-quoted (limit orders).
    quote: Quote | None = None
    # On-chain venues: the compute-unit limit (from a simulation, with headroom) and the
    # priority fee in micro-lamports per compute unit the transaction is built with.
    compute_units: int | None = None
    priority_fee: int | None = None


class SwapRequested(Event, frozen=True, kw_only=True):
    """Recorded before the swap is sent: from here on the order can no longer be cancelled,
    and a redelivered submit re-sends under the same idempotency key instead of swapping twice.

    On chain the swap is signed first: `signature` is its transaction's signature,
    `transaction` the signed transaction (base64; public once sent, holds no secret) and
    `last_valid_block_height` the height after which it can no longer land. A redelivered
    submit or confirm re-sends exactly this transaction, so one order never lands twice."""

    dex: str
    idempotency_key: str
    signature: str | None = None
    transaction: str | None = None
    last_valid_block_height: int | None = None


class SwapReissued(Event, frozen=True, kw_only=True):
    """The signed swap expired without landing (its blockhash's last valid height passed and
    the chain has no record of its signature): it is signed again on a fresh blockhash. The
    new signature is recorded before it is sent, like the first one."""

    previous_signature: str
    signature: str
    transaction: str
    last_valid_block_height: int
    reissue: int


class OrderSubmitted(Event, frozen=True, kw_only=True):
    dex: str
    tx_hash: str
    # Where the venue says the transaction can be looked up (None: it gave no link, or the
    # event predates links). Recorded, not derived later, so replays never depend on config.
    explorer_url: str | None = None


class OrderConfirmed(Event, frozen=True, kw_only=True):
    tx_hash: str
    executed_price: Decimal
    amount_out: Decimal
    # On-chain venues: what the transaction really did, read from the chain: the slot it
    # landed in, the fee it paid (SOL), the tokenIn it spent, and where to look it up.
    slot: int | None = None
    fee_paid: Decimal | None = None
    amount_in: Decimal | None = None
    explorer_url: str | None = None


class RetryScheduled(Event, frozen=True, kw_only=True):
    step: Step
    attempt: int
    error: str
    delay_ms: int


class OrderFailed(Event, frozen=True, kw_only=True):
    step: Step
    error: str
    attempts: int


class OrderCancelled(Event, frozen=True, kw_only=True):
    reason: str
    by: str


class OrderExpired(Event, frozen=True, kw_only=True):
    expires_at: datetime


OrderEvent = (
    OrderPending
    | OrderWaiting
    | OrderAwaitingLaunch
    | OrderRouting
    | OrderBuilding
    | SwapRequested
    | SwapReissued
    | OrderSubmitted
    | OrderConfirmed
    | RetryScheduled
    | OrderFailed
    | OrderCancelled
    | OrderExpired
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        OrderPending,
        OrderWaiting,
        OrderAwaitingLaunch,
        OrderRouting,
        OrderBuilding,
        SwapRequested,
        SwapReissued,
        OrderSubmitted,
        OrderConfirmed,
        RetryScheduled,
        OrderFailed,
        OrderCancelled,
        OrderExpired,
    )
}

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder: msgspec.json.Decoder[OrderEvent] = msgspec.json.Decoder(OrderEvent)


def encode_event(event: Event) -> bytes:
    """JSON of the event including its `type` tag; Decimals as strings."""
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> OrderEvent:
    return _decoder.decode(data)


def event_type(event: Event) -> str:
    return type(event).__name__

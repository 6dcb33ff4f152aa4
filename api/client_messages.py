"""What clients receive: one message per order event, in the brief's shape.

`{"orderId", "status", "timestamp", "details", "version", "type"}` (plus `position` on a
user's stream) where `status` is the lifecycle status the event records (`retrying` for
a scheduled retry) and `details` carries the event's facts in camelCase.

The wire types are msgspec Structs with `rename="camel"`: one for the envelope and one
for the details of each event type, so the encoder writes the keys (and Decimals as
their exact strings) and no mapping is kept by hand. Their field order is the key order
clients see; tests/unit/test_client_messages.py pins the texts byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from domain.events import (
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
from domain.order import status_of


class _Wire(msgspec.Struct, rename="camel", gc=False):
    """Base of the wire types: camelCase keys; never in a reference cycle, so untracked by the GC."""


class _WireExtended(_Wire, omit_defaults=True):
    """A wire type whose trailing optional fields (the on-chain venues' facts) are left out
    when unset, so the mock's messages keep exactly the keys they always had."""


class QuoteDetails(_WireExtended):
    dex: str
    price: Decimal
    fee: Decimal
    liquidity: Decimal
    expected_out: Decimal
    price_impact: Decimal | None = None
    pool: str | None = None
    slot: int | None = None

    @classmethod
    def of(cls, q: Quote) -> QuoteDetails:
        return cls(q.dex, q.price, q.fee, q.liquidity, q.expected_out, q.price_impact, q.pool, q.slot)


class PendingDetails(_Wire):
    user_id: str
    order_type: str
    token_in: str
    token_out: str
    amount: Decimal
    limit_price: Decimal | None
    slippage_tolerance: Decimal
    # isoformat() ("+00:00"), as clients have always received it, not msgspec's "Z".
    expires_at: str | None


class WaitingDetails(_Wire):
    best_dex: str
    best_price: Decimal
    limit_price: Decimal


class AwaitingLaunchDetails(_Wire):
    token: str


class CancelledDetails(_Wire):
    reason: str
    by: str


class ExpiredDetails(_Wire):
    expires_at: str


class RoutingDetails(_WireExtended):
    quotes: list[QuoteDetails]
    chosen_dex: str
    expected_out: Decimal
    reason: str
    unavailable: dict[str, str] = {}


class BuildingDetails(_WireExtended):
    dex: str
    expected_out: Decimal
    min_out: Decimal
    actions: list[str]
    quote: QuoteDetails | None
    compute_units: int | None = None
    priority_fee: int | None = None


class SubmittedDetails(_Wire):
    dex: str
    tx_hash: str
    explorer_url: str | None


class SwapRequestedDetails(_Wire):
    dex: str


class ConfirmedDetails(_WireExtended):
    tx_hash: str
    executed_price: Decimal
    amount_out: Decimal
    slot: int | None = None
    fee_paid: Decimal | None = None
    amount_in: Decimal | None = None
    explorer_url: str | None = None


class ReissuedDetails(_Wire):
    """The swap was signed again after its blockhash expired unlanded: the new txHash."""

    tx_hash: str
    replaces: str
    reissue: int


class RetryDetails(_Wire):
    step: str
    attempt: int
    error: str
    retry_in_ms: int


class FailedDetails(_Wire):
    step: str
    error: str
    attempts: int


Details = (
    PendingDetails
    | WaitingDetails
    | AwaitingLaunchDetails
    | CancelledDetails
    | ExpiredDetails
    | RoutingDetails
    | BuildingDetails
    | SubmittedDetails
    | SwapRequestedDetails
    | ConfirmedDetails
    | ReissuedDetails
    | RetryDetails
    | FailedDetails
)


class ClientMessage(_Wire):
    order_id: str
    status: str
    timestamp: str
    details: Details
    version: int
    type: str
    # Only on a user's stream, whose orders interleave: resume by position.
    position: int | msgspec.UnsetType = msgspec.UNSET


def _pending(e: OrderPending) -> PendingDetails:
    expires_at = e.expires_at.isoformat() if e.expires_at else None
    return PendingDetails(
        e.user_id,
        e.order_type,
        e.token_in,
        e.token_out,
        e.amount,
        e.limit_price,
        e.slippage_tolerance,
        expires_at,
    )


def _routing(e: OrderRouting) -> RoutingDetails:
    return RoutingDetails(
        [QuoteDetails.of(q) for q in e.quotes], e.chosen_dex, e.expected_out, e.reason, e.unavailable
    )


def _building(e: OrderBuilding) -> BuildingDetails:
    quote = QuoteDetails.of(e.quote) if e.quote else None
    return BuildingDetails(
        e.dex, e.expected_out, e.min_out, e.actions, quote, e.compute_units, e.priority_fee
    )


def _confirmed(e: OrderConfirmed) -> ConfirmedDetails:
    return ConfirmedDetails(
        e.tx_hash, e.executed_price, e.amount_out, e.slot, e.fee_paid, e.amount_in, e.explorer_url
    )


def client_status(event: Event) -> str:
    """The lifecycle status a client sees for the event: a reissued swap is still submitted,
    a scheduled retry is `retrying`."""
    status = status_of(event)
    if status is not None:
        return status
    return "submitted" if isinstance(event, SwapReissued) else "retrying"


# Each event type's details, looked up by type (one dict lookup, not a chain of isinstance).
_DETAILS: dict[type[Event], Callable[[Any], Details]] = {
    OrderPending: _pending,
    OrderWaiting: lambda e: WaitingDetails(e.best_dex, e.best_price, e.limit_price),
    OrderAwaitingLaunch: lambda e: AwaitingLaunchDetails(e.token),
    OrderCancelled: lambda e: CancelledDetails(e.reason, e.by),
    OrderExpired: lambda e: ExpiredDetails(e.expires_at.isoformat()),
    OrderRouting: _routing,
    OrderBuilding: _building,
    OrderSubmitted: lambda e: SubmittedDetails(e.dex, e.tx_hash, e.explorer_url),
    SwapRequested: lambda e: SwapRequestedDetails(e.dex),
    OrderConfirmed: _confirmed,
    SwapReissued: lambda e: ReissuedDetails(e.signature, e.previous_signature, e.reissue),
    RetryScheduled: lambda e: RetryDetails(e.step, e.attempt, e.error, e.delay_ms),
    OrderFailed: lambda e: FailedDetails(e.step, e.error, e.attempts),
}

_encoder = msgspec.json.Encoder(decimal_format="string")


def details_of(event: Event) -> Details:
    """The event's facts as clients see them."""
    return _DETAILS[type(event)](event)


def event_details(event: Event) -> dict[str, Any]:
    """The details as plain data (camelCase keys, Decimals as strings): for the operator CLI."""
    return msgspec.to_builtins(details_of(event))  # type: ignore[no-any-return]


def client_message(
    order_id: str,
    version: int,
    event: Event,
    timestamp: str,
    position: int | msgspec.UnsetType = msgspec.UNSET,
) -> ClientMessage:
    return ClientMessage(
        order_id,
        client_status(event),
        timestamp,
        _DETAILS[type(event)](event),
        version,
        type(event).__name__,
        position,
    )


def client_message_text(
    order_id: str,
    version: int,
    event: Event,
    timestamp: str,
    position: int | msgspec.UnsetType = msgspec.UNSET,
) -> str:
    """The JSON text sent to every WebSocket that follows the order (or, with `position`, its user)."""
    return _encoder.encode(client_message(order_id, version, event, timestamp, position)).decode()

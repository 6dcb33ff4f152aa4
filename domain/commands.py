"""What the engine is asked to do to an order.

A command carries the results of any I/O done to serve it (quotes, a tx hash),
so that `decide` stays a pure function. `command_id` identifies one request so a
redelivered message or a client retry can be recognised.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from domain.events import OrderType, Quote, Step


class Command(msgspec.Struct, frozen=True, kw_only=True):
    command_id: str


class PlaceOrder(Command, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    order_type: OrderType
    token_in: str
    token_out: str
    amount: Decimal
    slippage_tolerance: Decimal
    limit_price: Decimal | None = None
    expires_at: datetime | None = None


class RouteOrder(Command, frozen=True, kw_only=True):
    quotes: list[Quote]
    # Venues that gave no quote, and why (a disabled pool, a timeout…): shown in the routing.
    unavailable: dict[str, str] = {}


class BuildTransaction(Command, frozen=True, kw_only=True):
    """Build the swap; a limit order passes fresh quotes so its limit is checked again."""

    fresh_quotes: list[Quote] = []
    # What the venue planned for the transaction (on-chain venues; None for the mock).
    compute_units: int | None = None
    priority_fee: int | None = None


class RequestSwap(Command, frozen=True, kw_only=True):
    """Record the intent to send the swap (and its signed transaction), before sending it."""

    idempotency_key: str
    signature: str | None = None
    transaction: str | None = None
    last_valid_block_height: int | None = None


class ReissueSwap(Command, frozen=True, kw_only=True):
    """Replace a signed swap that expired without landing by one signed on a fresh
    blockhash; the order fails once it has been reissued `max_reissues` times."""

    step: Step
    previous_signature: str
    signature: str
    transaction: str
    last_valid_block_height: int
    max_reissues: int


class RecordSubmission(Command, frozen=True, kw_only=True):
    tx_hash: str
    explorer_url: str | None = None


class RecordConfirmation(Command, frozen=True, kw_only=True):
    tx_hash: str
    executed_price: Decimal
    amount_out: Decimal
    slot: int | None = None
    fee_paid: Decimal | None = None
    amount_in: Decimal | None = None
    explorer_url: str | None = None


class RecordAttemptFailure(Command, frozen=True, kw_only=True):
    """A step failed transiently; retry after `delay_ms` unless attempts are used up."""

    step: Step
    attempt: int
    max_attempts: int
    error: str
    delay_ms: int


class FailOrder(Command, frozen=True, kw_only=True):
    step: Step
    error: str


class CancelOrder(Command, frozen=True, kw_only=True):
    """Stop an order that has not been submitted; refused once the swap is sent."""

    reason: str = "cancelled by the user"
    by: str = "user"


class ExpireOrder(Command, frozen=True, kw_only=True):
    """End a limit order whose `expires_at` is at or before `now` and that has not started executing."""

    now: datetime


class AwaitLaunch(Command, frozen=True, kw_only=True):
    """Routing found no pool for a sniper order's pair: wait until `token` launches."""

    token: str

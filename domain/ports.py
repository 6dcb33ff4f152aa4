"""The interfaces the application services need from the outside world.

Adapters implement them (Postgres, Redis, Dramatiq, the DEX clients); each has an
in-memory or fake twin for unit tests. Only data types and Protocols live here, so
the domain and its services import no I/O library.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import msgspec

from domain.events import Event, OrderType, Quote, Step
from domain.order import OrderState


class EventMetadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Why an event was written: the order it belongs to, what caused it, who wrote it.

    `causation_id` is the id of the command that produced the event: it is how a
    redelivered command is recognised. `issued_at` is when the writer decided it
    (the `recorded_at` column is when Postgres stored it).
    """

    correlation_id: str
    causation_id: str
    actor: str
    attempt: int | None = None
    issued_at: datetime | None = None


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the log holds it."""

    position: int
    stream_id: str
    version: int
    type: str
    event: Event
    metadata: EventMetadata
    recorded_at: datetime


class EventStore(Protocol):
    """The event log: streams of versioned events, and one global order of positions.

    Every implementation passes one contract suite (tests/integration/test_event_store_contract.py,
    against Postgres and the in-memory store): versions of
    a stream run 1, 2, 3… with no gap; positions rise in the order appends become
    visible, so a reader tailing `read_all` by position never skips an event.
    """

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: EventMetadata,
    ) -> list[RecordedEvent]:
        """Append after `expected_version` (0: a new stream); ConcurrencyConflict if the
        stream is no longer there. All events or none. No events: nothing happens."""
        ...

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        """The stream's events with a version above `after_version`, in version order."""
        ...

    async def read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        """Up to `limit` events of every stream with a position above `after`, in position order."""
        ...

    async def read_user_events(self, user_id: str, after: int, limit: int) -> list[RecordedEvent]:
        """Like `read_all`, restricted to the streams whose first event names `user_id`
        (an order's `OrderPending`)."""
        ...

    async def last_position(self) -> int:
        """The highest position in the log (0 when it is empty)."""
        ...


class StepQueue(Protocol):
    """Where the next execution step of an order is handed over (the Dramatiq actors)."""

    async def send(
        self,
        step: Step,
        order_id: str,
        *,
        priority: bool = False,
        delay_ms: int | None = None,
        state: OrderState | None = None,
    ) -> None:
        """Queue `step` for the order, after `delay_ms`; `priority` takes the sniper lane.

        `state` is the order as the sender just recorded it: the step may decide on it
        without reading the stream (a stale one only loses the append race)."""
        ...


class ExecutionSlots(Protocol):
    """The deployment-wide limits on execution: orders in flight and starts per minute."""

    async def acquire(self, order_id: str) -> int | None:
        """Take (or renew) the order's slot: None if granted, else the ms to wait (-1: full)."""
        ...

    async def peek(self, order_id: str) -> int | None:
        """What `acquire` would answer now, taking nothing."""
        ...

    async def renew(self, order_id: str) -> bool:
        """Extend a slot the order holds; never takes a new one."""
        ...

    async def release(self, order_id: str) -> None: ...


class SubmissionRate(Protocol):
    """Per-user limit on order submissions."""

    async def check(self, user_id: str) -> float:
        """0 when the submission may go ahead, else the seconds until it may."""
        ...


class OrderFinder(Protocol):
    """Candidates for the scheduler's jobs, from a read model: it may lag the log, so
    whatever it returns is only a hint, and the fold decides."""

    async def waiting(self, token: str | None = None, limit: int = 1000) -> list[tuple[str, OrderType]]:
        """(id, type) of waiting orders, oldest first; with `token`, those trading it."""
        ...

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[str]: ...

    async def stuck(self, older_than: datetime, limit: int = 1000) -> list[tuple[str, str, int, OrderType]]:
        """(id, status, version, type) of executing orders whose last event is older."""
        ...


class RedriveClaims(Protocol):
    """Remembers which (order, version) was re-driven, so each state is re-driven once."""

    async def claim(self, order_id: str, version: int) -> bool: ...

    async def release(self, order_id: str, version: int) -> None:
        """Give a claim back (its re-drive could not be sent)."""
        ...


class Launches(Protocol):
    """Token launches of the (mock) market: what sniper orders wait for."""

    async def launch(self, token: str) -> bool:
        """Open pools for `token`; False if it had them already."""
        ...

    async def is_launched(self, token: str) -> bool: ...


class SwapTerms(msgspec.Struct, frozen=True, kw_only=True):
    """One order's swap as the venue builds it: what goes in, the least that may come out,
    the quote it was routed on, and (on chain) the compute budget the build planned."""

    order_id: str
    token_in: str
    token_out: str
    amount: Decimal
    min_out: Decimal
    quote: Quote
    compute_units: int | None = None
    priority_fee: int | None = None


class SwapPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What the build step learnt from the venue: the compute-unit limit (from a simulation,
    with headroom) and the priority fee (micro-lamports per unit). None where not applicable."""

    compute_units: int | None = None
    priority_fee: int | None = None


class SignedSwap(msgspec.Struct, frozen=True, kw_only=True):
    """A swap ready to send: its signature (the transaction id), and on chain the signed
    transaction (base64) and the block height after which it can no longer land."""

    signature: str
    transaction: str | None = None
    last_valid_block_height: int | None = None


class SwapReceipt(msgspec.Struct, frozen=True, kw_only=True):
    tx_hash: str
    executed_price: Decimal
    amount_out: Decimal
    # On chain: the slot it landed in, the fee it paid (SOL), the tokenIn it really spent.
    slot: int | None = None
    fee_paid: Decimal | None = None
    amount_in: Decimal | None = None


class Dex(Protocol):
    """One venue: quote; plan, sign, send and confirm a swap.

    Errors: `TransientError` for what may work if tried again (RPC down, timeout);
    `SwapRejected` for a refusal that will not change (a program error, too little funds);
    `SwapExpired` when a signed swap can no longer land and never did.
    """

    name: str

    async def quote(self, token_in: str, token_out: str, amount: Decimal) -> Quote: ...

    async def plan(self, terms: SwapTerms) -> SwapPlan:
        """Check the swap can be made (funds, pool) and size its compute budget; sends nothing."""
        ...

    async def sign(self, terms: SwapTerms, idempotency_key: str) -> SignedSwap:
        """Build and sign the swap; sends nothing. The signature is recorded before `send`."""
        ...

    async def send(self, swap: SignedSwap, terms: SwapTerms) -> None:
        """Send (or re-send) exactly this signed swap. Never swaps twice: a swap that already
        landed is not sent again, and re-sending the same signature cannot land twice."""
        ...

    def explorer_url(self, tx_hash: str) -> str | None:
        """Where a person can look the transaction up (None: nowhere to link to)."""
        ...

    async def confirm(self, swap: SignedSwap, terms: SwapTerms) -> SwapReceipt:
        """Wait for the swap to land and read what it did; TransientError if it cannot tell yet."""
        ...

"""The interfaces the domain needs from the outside world.

Adapters implement them (Postgres, Redis, the DEX clients); tests can supply
fakes. Only data types and Protocols live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import msgspec

from domain.events import Event, Quote


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
    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: EventMetadata,
    ) -> list[RecordedEvent]:
        """Append after `expected_version`; ConcurrencyConflict if the stream moved."""
        ...

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]: ...


class SwapReceipt(msgspec.Struct, frozen=True, kw_only=True):
    tx_hash: str
    executed_price: Decimal
    amount_out: Decimal


class Dex(Protocol):
    """One venue: quote, then submit a swap, then confirm it."""

    name: str

    async def quote(self, token_in: str, token_out: str, amount: Decimal) -> Quote: ...

    async def submit(
        self,
        order_id: str,
        quote: Quote,
        amount: Decimal,
        min_out: Decimal,
        idempotency_key: str | None = None,
    ) -> str:
        """Send the swap; returns its transaction hash. The same `idempotency_key` must
        never swap twice (a re-send after a crash returns the first transaction)."""
        ...

    def explorer_url(self, tx_hash: str) -> str | None:
        """Where a person can look the transaction up (None: nowhere to link to)."""
        ...

    async def confirm(self, tx_hash: str, quote: Quote, amount: Decimal, min_out: Decimal) -> SwapReceipt:
        """Wait for the swap to settle; TransientError if it cannot tell yet."""
        ...

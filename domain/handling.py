"""Command handling: read the stream, fold, decide, append; retry on a conflict.

Async and written against the `EventStore` port only, so the API and the workers
share one way of changing an order, and tests can drive it with any store.
"""

from __future__ import annotations

from datetime import datetime

from domain.commands import Command
from domain.errors import ConcurrencyConflict
from domain.order import OrderState, decide, fold
from domain.ports import EventMetadata, EventStore, RecordedEvent

MAX_CONFLICT_RETRIES = 5


async def load(store: EventStore, order_id: str) -> OrderState:
    """The order's current state, folded from its stream."""
    return fold(r.event for r in await store.read_stream(order_id))


async def handle(
    store: EventStore,
    order_id: str,
    command: Command,
    *,
    actor: str,
    attempt: int | None = None,
    issued_at: datetime | None = None,
) -> tuple[OrderState, list[RecordedEvent]]:
    """Apply `command` to the order; returns the new state and what was recorded.

    A command whose id the stream already holds (a redelivered message, a client
    retry) is not decided again: the events it stored are returned. A stale read
    loses the append race with a ConcurrencyConflict; the command is then decided
    again from a fresh fold, so the log never holds a duplicate or an event
    decided on outdated state.
    """
    for _ in range(MAX_CONFLICT_RETRIES):
        history = await store.read_stream(order_id)
        state = fold(r.event for r in history)
        already = [r for r in history if r.metadata.causation_id == command.command_id]
        if already:
            return state, already
        events = decide(state, command)
        metadata = EventMetadata(
            correlation_id=order_id,
            causation_id=command.command_id,
            actor=actor,
            attempt=attempt,
            issued_at=issued_at,
        )
        try:
            recorded = await store.append(order_id, state.version, events, metadata)
        except ConcurrencyConflict:
            continue
        return fold(events, state), recorded
    raise ConcurrencyConflict(order_id, -1)

"""Changing an order: read its stream once, fold, decide, append once.

A service that needs the order's state before deciding (to quote it, take a slot)
`load`s it and hands the same history to `handle`, so the normal path costs one read
and one append. A stale history loses the append race with a ConcurrencyConflict;
the command is then decided again on a fresh read, so the log never holds a
duplicate or an event decided on outdated state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from domain.commands import Command
from domain.errors import ConcurrencyConflict
from domain.order import OrderState, decide, fold
from domain.ports import EventMetadata, EventStore, RecordedEvent

MAX_CONFLICT_RETRIES = 5


class OrderHistory(msgspec.Struct, frozen=True, kw_only=True):
    """An order's recorded events and the state they fold to.

    `events` is None when only the state is known (handed over with a step's message):
    deciding on it is safe, because the append at its version fails if the stream has
    moved on (a command already applied included), and the command is then decided
    again on a fresh read."""

    state: OrderState
    events: Sequence[RecordedEvent] | None

    @property
    def exists(self) -> bool:
        return self.state.version > 0

    def caused_by(self, command_id: str) -> list[RecordedEvent]:
        """The events a command already stored (a redelivered message, a client retry)."""
        return [r for r in self.events or () if r.metadata.causation_id == command_id]

    def after(self, handled: Handled) -> OrderHistory:
        """The history once `handled` (decided on this one) is recorded."""
        if self.events is None:
            return OrderHistory(state=handled.state, events=None)
        return OrderHistory(state=handled.state, events=[*self.events, *handled.recorded])


class Handled(msgspec.Struct, frozen=True, kw_only=True):
    """What a command did: the order's state after it, its events, and whether they are new."""

    state: OrderState
    recorded: list[RecordedEvent]
    appended: bool


NO_HISTORY = OrderHistory(state=OrderState(), events=())


async def load(store: EventStore, order_id: str) -> OrderHistory:
    """The order's history and current state, from one read of its stream."""
    events = await store.read_stream(order_id)
    return OrderHistory(state=fold(r.event for r in events), events=events)


async def handle(
    store: EventStore,
    order_id: str,
    command: Command,
    *,
    actor: str,
    attempt: int | None = None,
    issued_at: datetime | None = None,
    history: OrderHistory | None = None,
) -> Handled:
    """Apply `command` to the order, deciding on `history` if given (else on a fresh read).

    A command whose id the history already holds is not decided again: the events it
    stored are returned, and nothing is appended. A DomainError from `decide` (the
    state does not allow the command) propagates with nothing appended.
    """
    current = history
    for _ in range(MAX_CONFLICT_RETRIES):
        if current is None:
            current = await load(store, order_id)
        already = current.caused_by(command.command_id)
        if already:
            return Handled(state=current.state, recorded=already, appended=False)
        events = decide(current.state, command)
        metadata = EventMetadata(
            correlation_id=order_id,
            causation_id=command.command_id,
            actor=actor,
            attempt=attempt,
            issued_at=issued_at,
        )
        try:
            recorded = await store.append(order_id, current.state.version, events, metadata)
        except ConcurrencyConflict:
            current = None
            continue
        return Handled(state=fold(events, current.state), recorded=recorded, appended=bool(recorded))
    raise ConcurrencyConflict(order_id, -1)

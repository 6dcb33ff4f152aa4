"""`handle`: decide on the history given (or one read), append once; a stale history
loses the append race and the command is decided again on a fresh read."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from adapters.memory_event_store import InMemoryEventStore
from domain.commands import CancelOrder, RouteOrder
from domain.errors import ConcurrencyConflict, InvalidTransition
from domain.events import Event, OrderCancelled, OrderRouting
from domain.ports import EventMetadata, RecordedEvent
from domain.services.handling import MAX_CONFLICT_RETRIES, handle, load
from tests.factories import quotes
from tests.unit.service_fakes import NOW, clock, place

pytestmark = pytest.mark.anyio


class CountingStore(InMemoryEventStore):
    """The in-memory store, counting stream reads and append attempts."""

    def __init__(self) -> None:
        super().__init__(clock=clock)
        self.reads = 0
        self.appends = 0
        self.always_conflict = False

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        self.reads += 1
        return await super().read_stream(stream_id, after_version)

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event], metadata: EventMetadata
    ) -> list[RecordedEvent]:
        self.appends += 1
        if self.always_conflict:
            raise ConcurrencyConflict(stream_id, expected_version)
        return await super().append(stream_id, expected_version, events, metadata)

    def reset(self) -> None:
        self.reads = self.appends = 0


ROUTE = RouteOrder(command_id="route-1", quotes=quotes())


async def test_with_a_given_history_the_command_is_appended_without_a_read() -> None:
    store = CountingStore()
    oid = await place(store)
    history = await load(store, oid)
    store.reset()

    handled = await handle(store, oid, ROUTE, actor="test", history=history)

    assert (store.reads, store.appends) == (0, 1)
    assert handled.appended
    assert [(r.version, type(r.event)) for r in handled.recorded] == [(2, OrderRouting)]
    assert (handled.state.status, handled.state.version) == ("routing", 2)


async def test_without_a_history_the_stream_is_read_once() -> None:
    store = CountingStore()
    oid = await place(store)
    store.reset()

    await handle(store, oid, ROUTE, actor="test")

    assert (store.reads, store.appends) == (1, 1)


async def test_the_metadata_names_the_order_the_command_and_the_writer() -> None:
    store = CountingStore()
    oid = await place(store)

    handled = await handle(store, oid, ROUTE, actor="worker:route", attempt=2, issued_at=NOW)

    assert handled.recorded[0].metadata == EventMetadata(
        correlation_id=oid, causation_id="route-1", actor="worker:route", attempt=2, issued_at=NOW
    )


async def test_a_stale_history_conflicts_then_the_command_is_decided_on_a_fresh_read() -> None:
    store = CountingStore()
    oid = await place(store)
    stale = await load(store, oid)
    await handle(store, oid, ROUTE, actor="other writer")
    store.reset()

    handled = await handle(store, oid, CancelOrder(command_id="cancel"), actor="api", history=stale)

    assert (store.reads, store.appends) == (1, 2)  # the conflict, the re-read, the append
    assert [(r.version, type(r.event)) for r in handled.recorded] == [(3, OrderCancelled)]
    # Folded on the fresh state: the route recorded meanwhile is part of it.
    assert (handled.state.status, handled.state.chosen_dex) == ("cancelled", "raydium")
    assert [r.type for r in await store.read_stream(oid)] == [
        "OrderPending",
        "OrderRouting",
        "OrderCancelled",
    ]


async def test_a_command_decided_again_on_a_fresh_read_can_be_refused() -> None:
    store = CountingStore()
    oid = await place(store)
    stale = await load(store, oid)
    await handle(store, oid, CancelOrder(command_id="cancel"), actor="api")

    with pytest.raises(InvalidTransition):
        await handle(store, oid, ROUTE, actor="worker:route", history=stale)

    assert [r.type for r in await store.read_stream(oid)] == ["OrderPending", "OrderCancelled"]


async def test_a_command_already_in_the_history_appends_nothing() -> None:
    store = CountingStore()
    oid = await place(store)
    first = await handle(store, oid, ROUTE, actor="test")
    history = await load(store, oid)
    store.reset()

    again = await handle(store, oid, ROUTE, actor="test", history=history)

    assert (again.appended, store.appends) == (False, 0)
    assert again.recorded == first.recorded
    assert again.state == first.state
    assert await store.last_position() == 2


async def test_a_command_the_winning_writer_stored_is_found_after_the_conflict() -> None:
    store = CountingStore()
    oid = await place(store)
    stale = await load(store, oid)
    first = await handle(store, oid, ROUTE, actor="worker:route")  # the same message, elsewhere

    again = await handle(store, oid, ROUTE, actor="worker:route", history=stale)

    assert again.appended is False
    assert again.recorded == first.recorded
    assert await store.last_position() == 2


async def test_a_stream_that_always_conflicts_gives_up_with_a_conflict() -> None:
    store = CountingStore()
    oid = await place(store)
    store.always_conflict = True
    store.reset()

    with pytest.raises(ConcurrencyConflict):
        await handle(store, oid, ROUTE, actor="test")

    assert store.appends == MAX_CONFLICT_RETRIES

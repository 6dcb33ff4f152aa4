"""The `EventStore` contract (domain/ports.py), run against every implementation.

Each test runs once on `InMemoryEventStore` and once on `PostgresEventStore` against
the session's real database. That database is shared by the whole session, so the
tests write streams of their own (fresh order ids, users of their own) and read the
log from the position it had before they started. Every stream written here is a
legal order history (`OrderPending`, then `RetryScheduled`s), because other suites
fold the session's whole log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise

import msgspec
import pytest

from adapters.memory_event_store import InMemoryEventStore
from adapters.postgres_event_store import PostgresEventStore
from domain.errors import ConcurrencyConflict
from domain.events import Event, OrderPending, RetryScheduled
from domain.order import fold
from domain.ports import EventMetadata, EventStore, RecordedEvent
from tests.factories import new_order_id, pending_event

pytestmark = pytest.mark.anyio

STORES = ["memory", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=STORES)
def event_store(request: pytest.FixtureRequest) -> EventStore:
    """Each store; Postgres on the session's shared database."""
    if request.param == "memory":
        return InMemoryEventStore()
    store: PostgresEventStore = request.getfixturevalue("store")
    return store


@pytest.fixture(params=STORES)
def empty_event_store(request: pytest.FixtureRequest) -> EventStore:
    """Each store with nothing in it; Postgres on a database of this test's own."""
    if request.param == "memory":
        return InMemoryEventStore()
    return PostgresEventStore(request.getfixturevalue("own_pool").connection)


def meta(stream_id: str, cause: str = "test") -> EventMetadata:
    return EventMetadata(correlation_id=stream_id, causation_id=cause, actor="contract")


def retry(note: str = "x", attempt: int = 1) -> RetryScheduled:
    """A later event of a pending order: any number of them still folds."""
    return RetryScheduled(step="route", attempt=attempt, error=note, delay_ms=5)


def pending_for(user_id: str) -> tuple[str, OrderPending]:
    oid = new_order_id()
    return oid, msgspec.structs.replace(pending_event(oid), user_id=user_id)


def new_user() -> str:
    return f"user-{new_order_id()}"


async def new_order(store: EventStore, retries: int = 0) -> tuple[str, list[RecordedEvent]]:
    """A new stream: an order placed, then `retries` retries, in one append."""
    oid = new_order_id()
    events: list[Event] = [pending_event(oid), *(retry(f"r{i}") for i in range(retries))]
    return oid, await store.append(oid, 0, events, meta(oid))


async def since(store: EventStore, after: int, stream_ids: Sequence[str] = ()) -> list[RecordedEvent]:
    """Everything above `after`, paged; only `stream_ids` if given."""
    found: list[RecordedEvent] = []
    while page := await store.read_all(after, 100):
        assert page[0].position > after, "read_all returned a position it was asked to skip"
        found.extend(page)
        after = page[-1].position
    return [r for r in found if not stream_ids or r.stream_id in stream_ids]


def assert_stream_folds(records: Sequence[RecordedEvent]) -> None:
    fold(r.event for r in records)  # raises InvalidTransition if it is not an order history


# --- append and read back -------------------------------------------------------------


async def test_appended_events_and_metadata_come_back_equal_to_what_was_given(
    event_store: EventStore,
) -> None:
    oid = new_order_id()
    issued = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    full = EventMetadata(
        correlation_id=oid, causation_id=f"{oid}:place", actor="api", attempt=2, issued_at=issued
    )
    placed = pending_event(oid)
    retries = [retry("rpc timeout", 1), retry("no quotes", 2)]
    await event_store.append(oid, 0, [placed], full)
    await event_store.append(oid, 1, retries, meta(oid, "retry"))
    history = await event_store.read_stream(oid)
    assert [r.event for r in history] == [placed, *retries]
    assert [r.metadata for r in history] == [full, meta(oid, "retry"), meta(oid, "retry")]
    assert [r.type for r in history] == ["OrderPending", "RetryScheduled", "RetryScheduled"]
    assert {r.stream_id for r in history} == {oid}


async def test_append_returns_the_records_that_read_stream_reads_back(event_store: EventStore) -> None:
    oid, first = await new_order(event_store)
    second = await event_store.append(oid, 1, [retry("a"), retry("b")], meta(oid))
    assert len(first) == 1 and len(second) == 2
    assert await event_store.read_stream(oid) == first + second


async def test_versions_of_a_stream_run_from_one_without_a_gap(event_store: EventStore) -> None:
    oid, _ = await new_order(event_store, retries=1)
    await event_store.append(oid, 2, [retry("c")], meta(oid))
    await event_store.append(oid, 3, [retry("d"), retry("e")], meta(oid))
    assert [r.version for r in await event_store.read_stream(oid)] == [1, 2, 3, 4, 5]


async def test_positions_rise_in_append_order_across_streams(event_store: EventStore) -> None:
    a, b = new_order_id(), new_order_id()
    appended = [
        *await event_store.append(a, 0, [pending_event(a)], meta(a)),
        *await event_store.append(b, 0, [pending_event(b), retry()], meta(b)),
        *await event_store.append(a, 1, [retry()], meta(a)),
        *await event_store.append(b, 2, [retry()], meta(b)),
    ]
    positions = [r.position for r in appended]
    assert all(p > 0 for p in positions)
    assert all(x < y for x, y in pairwise(positions))
    assert [(r.stream_id, r.version) for r in appended] == [(a, 1), (b, 1), (b, 2), (a, 2), (b, 3)]


async def test_recorded_at_is_timezone_aware_and_never_decreases_with_position(
    event_store: EventStore,
) -> None:
    start = await event_store.last_position()
    for _ in range(3):
        await new_order(event_store, retries=2)
    records = await since(event_store, start)
    assert len(records) == 9
    assert all(r.recorded_at.utcoffset() is not None for r in records)
    times = [r.recorded_at for r in records]
    assert all(x <= y for x, y in pairwise(times))


# --- optimistic concurrency -------------------------------------------------------------


async def test_writer_behind_the_stream_gets_a_conflict_and_writes_nothing(event_store: EventStore) -> None:
    oid, stored = await new_order(event_store, retries=1)
    last = await event_store.last_position()
    for stale in (0, 1):
        with pytest.raises(ConcurrencyConflict) as conflict:
            await event_store.append(oid, stale, [retry("stale")], meta(oid))
        assert (conflict.value.stream_id, conflict.value.expected_version) == (oid, stale)
    assert await event_store.read_stream(oid) == stored
    assert await event_store.last_position() == last


async def test_writer_ahead_of_the_stream_gets_a_conflict_and_writes_nothing(event_store: EventStore) -> None:
    oid, stored = await new_order(event_store)
    fresh = new_order_id()
    last = await event_store.last_position()
    with pytest.raises(ConcurrencyConflict):  # would leave version 2 missing
        await event_store.append(oid, 2, [retry("ahead")], meta(oid))
    with pytest.raises(ConcurrencyConflict):  # a new stream starts at 0
        await event_store.append(fresh, 1, [pending_event(fresh)], meta(fresh))
    assert await event_store.read_stream(oid) == stored
    assert await event_store.read_stream(fresh) == []
    assert await event_store.last_position() == last


async def test_concurrent_writers_at_the_same_version_exactly_one_wins(event_store: EventStore) -> None:
    oid, _ = await new_order(event_store)

    async def writer(i: int) -> str:
        try:
            await event_store.append(oid, 1, [retry(f"writer {i}")], meta(oid, f"writer-{i}"))
        except ConcurrencyConflict:
            return "conflict"
        return f"writer {i}"

    outcomes = await asyncio.gather(*(writer(i) for i in range(10)))
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1 and outcomes.count("conflict") == 9
    history = await event_store.read_stream(oid)
    assert [r.version for r in history] == [1, 2]
    assert history[1].event == retry(winners[0])


# --- all or nothing ---------------------------------------------------------------------


async def test_a_conflicting_multi_event_append_writes_none_of_its_events(event_store: EventStore) -> None:
    oid, stored = await new_order(event_store)
    last = await event_store.last_position()
    with pytest.raises(ConcurrencyConflict):
        await event_store.append(oid, 0, [pending_event(oid), retry("a"), retry("b")], meta(oid))
    assert await event_store.read_stream(oid) == stored
    assert await event_store.last_position() == last


async def test_racing_multi_event_appends_store_exactly_one_batch_whole(event_store: EventStore) -> None:
    oid, _ = await new_order(event_store)
    start = await event_store.last_position()

    async def writer(i: int) -> list[RecordedEvent]:
        batch = [retry(f"{i}.{n}", attempt=n) for n in (1, 2, 3)]
        try:
            return await event_store.append(oid, 1, batch, meta(oid, f"writer-{i}"))
        except ConcurrencyConflict:
            return []

    results = await asyncio.gather(*(writer(i) for i in range(6)))
    (won,) = [r for r in results if r]
    assert len(won) == 3
    history = await event_store.read_stream(oid)
    assert history[1:] == won
    assert [r.version for r in history] == [1, 2, 3, 4]
    assert {r.metadata.causation_id for r in history[1:]} == {won[0].metadata.causation_id}
    assert await since(event_store, start, [oid]) == won
    assert_stream_folds(history)


async def test_an_empty_append_writes_nothing_and_returns_an_empty_list(event_store: EventStore) -> None:
    oid, stored = await new_order(event_store)
    fresh = new_order_id()
    last = await event_store.last_position()
    assert await event_store.append(oid, 1, [], meta(oid)) == []
    assert await event_store.append(oid, 0, [], meta(oid)) == []  # nothing to write, nothing to conflict
    assert await event_store.append(fresh, 0, [], meta(fresh)) == []
    assert await event_store.read_stream(oid) == stored
    assert await event_store.read_stream(fresh) == []
    assert await event_store.last_position() == last


# --- reading a stream -------------------------------------------------------------------


async def test_read_stream_after_a_version_returns_only_the_later_events(event_store: EventStore) -> None:
    oid, stored = await new_order(event_store, retries=3)
    assert await event_store.read_stream(oid, 0) == stored
    assert await event_store.read_stream(oid, 1) == stored[1:]
    assert [r.version for r in await event_store.read_stream(oid, after_version=2)] == [3, 4]
    assert await event_store.read_stream(oid, 4) == []
    assert await event_store.read_stream(oid, 9) == []


async def test_an_unknown_stream_reads_empty(event_store: EventStore) -> None:
    await new_order(event_store)  # the log is not empty
    unknown = new_order_id()
    assert await event_store.read_stream(unknown) == []
    assert await event_store.read_stream(unknown, after_version=3) == []


# --- reading the log by position --------------------------------------------------------


async def test_read_all_returns_up_to_limit_events_above_a_position(event_store: EventStore) -> None:
    start = await event_store.last_position()
    _, a = await new_order(event_store, retries=2)
    _, b = await new_order(event_store, retries=1)
    appended = a + b
    assert await event_store.read_all(start, 2) == appended[:2]
    assert await event_store.read_all(appended[1].position, 2) == appended[2:4]
    assert await event_store.read_all(appended[2].position, 100) == appended[3:]
    assert await event_store.read_all(appended[-1].position, 100) == []
    assert await event_store.read_all(start, 0) == []


async def test_read_all_pages_through_the_log_in_position_order_without_gaps_or_repeats(
    event_store: EventStore,
) -> None:
    start = await event_store.last_position()
    streams = [new_order_id() for _ in range(4)]
    appended: list[RecordedEvent] = []
    for s in streams:
        appended += await event_store.append(s, 0, [pending_event(s)], meta(s))
    for version in range(1, 4):  # the streams interleave in the log
        for s in streams:
            appended += await event_store.append(s, version, [retry(f"{s}/{version}")], meta(s))
    pages: list[list[RecordedEvent]] = []
    after = start
    while page := await event_store.read_all(after, 5):
        assert page[0].position > after, "read_all returned a position it was asked to skip"
        pages.append(page)
        after = page[-1].position
    seen = [r for page in pages for r in page]
    assert all(len(page) <= 5 for page in pages)
    assert len(pages) >= 4  # 16 events, 5 a page
    assert all(x.position < y.position for x, y in pairwise(seen))
    assert [r for r in seen if r.stream_id in streams] == appended


# --- a user's events --------------------------------------------------------------------


async def interleaved_orders_of_two_users(
    store: EventStore,
) -> tuple[str, list[RecordedEvent], str, list[RecordedEvent]]:
    """Three orders of each of two users, placed and retried in turn; each user's records."""
    alice, bob = new_user(), new_user()
    mine: dict[str, list[RecordedEvent]] = {alice: [], bob: []}
    orders: list[tuple[str, str]] = []
    for _ in range(3):
        for user in (alice, bob):
            oid, placed = pending_for(user)
            orders.append((user, oid))
            mine[user] += await store.append(oid, 0, [placed], meta(oid))
    for user, oid in orders:
        mine[user] += await store.append(oid, 1, [retry()], meta(oid))
    return alice, mine[alice], bob, mine[bob]


async def test_read_user_events_returns_exactly_the_events_of_the_users_streams_by_position(
    event_store: EventStore,
) -> None:
    alice, alices, bob, bobs = await interleaved_orders_of_two_users(event_store)
    assert len(alices) == len(bobs) == 6
    assert await event_store.read_user_events(alice, 0, 100) == alices
    assert await event_store.read_user_events(bob, 0, 100) == bobs
    assert all(x.position < y.position for x, y in pairwise(alices))
    assert await event_store.read_user_events(new_user(), 0, 100) == []


async def test_read_user_events_pages_by_position_with_a_limit(event_store: EventStore) -> None:
    alice, alices, _, _ = await interleaved_orders_of_two_users(event_store)
    pages: list[list[RecordedEvent]] = []
    after = 0
    while page := await event_store.read_user_events(alice, after, 4):
        assert page[0].position > after, "read_user_events returned a position it was asked to skip"
        pages.append(page)
        after = page[-1].position
    assert [len(p) for p in pages] == [4, 2]
    assert [r for p in pages for r in p] == alices
    assert await event_store.read_user_events(alice, alices[2].position, 2) == alices[3:5]


# --- the last position ------------------------------------------------------------------


async def test_last_position_is_the_highest_position_appended(event_store: EventStore) -> None:
    _, first = await new_order(event_store, retries=2)
    assert await event_store.last_position() == first[-1].position
    _, second = await new_order(event_store)
    assert await event_store.last_position() == second[-1].position > first[-1].position
    assert await event_store.read_all(second[-1].position, 10) == []


async def test_an_empty_log_has_last_position_zero_and_reads_nothing(empty_event_store: EventStore) -> None:
    store = empty_event_store
    assert await store.last_position() == 0
    assert await store.read_all(0, 10) == []
    assert await store.read_user_events("user-1", 0, 10) == []
    _, stored = await new_order(store)
    assert await store.read_all(0, 10) == stored  # 0 is before the first position
    assert await store.last_position() == stored[0].position >= 1

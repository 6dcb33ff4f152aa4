"""The Postgres event store against a real server."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import PostgresEventStore
from domain.commands import BuildTransaction, RouteOrder
from domain.errors import ConcurrencyConflict
from domain.events import RetryScheduled
from domain.ports import EventMetadata
from domain.services.handling import handle, load
from tests.factories import new_order_id, pending_event, place_order, quotes

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def meta(order_id: str) -> EventMetadata:
    return EventMetadata(correlation_id=order_id, causation_id="test", actor="test")


async def test_appended_events_read_back_in_version_order(store: PostgresEventStore) -> None:
    oid = new_order_id()
    recorded = await store.append(oid, 0, [pending_event(oid)], meta(oid))
    more = await store.append(
        oid, 1, [RetryScheduled(step="route", attempt=1, error="x", delay_ms=5)], meta(oid)
    )
    history = await store.read_stream(oid)
    assert [r.version for r in history] == [1, 2]
    assert [r.event for r in history] == [recorded[0].event, more[0].event]
    assert history[0].position < history[1].position
    assert history[0].metadata == meta(oid)


async def test_stale_writer_gets_conflict_and_writes_nothing(store: PostgresEventStore) -> None:
    oid = new_order_id()
    await store.append(oid, 0, [pending_event(oid)], meta(oid))
    with pytest.raises(ConcurrencyConflict):
        await store.append(oid, 0, [pending_event(oid)], meta(oid))
    with pytest.raises(ConcurrencyConflict):  # ahead of the stream: would leave a gap
        await store.append(oid, 5, [pending_event(oid)], meta(oid))
    assert [r.version for r in await store.read_stream(oid)] == [1]


async def test_concurrent_writers_at_same_version_exactly_one_wins(store: PostgresEventStore) -> None:
    oid = new_order_id()
    await store.append(oid, 0, [pending_event(oid)], meta(oid))
    outcomes: list[str] = []

    async def writer(i: int) -> None:
        event = RetryScheduled(step="route", attempt=1, error=f"writer {i}", delay_ms=1)
        try:
            await store.append(oid, 1, [event], meta(oid))
            outcomes.append("won")
        except ConcurrencyConflict:
            outcomes.append("conflict")

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(writer, i)
    assert sorted(outcomes) == ["conflict"] * 7 + ["won"]
    assert [r.version for r in await store.read_stream(oid)] == [1, 2]


async def test_handle_decides_again_after_a_conflict(store: PostgresEventStore) -> None:
    oid = new_order_id()
    await handle(store, oid, place_order(oid), actor="test")

    # Two different routing commands race; the loser re-reads, finds the order routed, and is refused.
    async def route(command_id: str) -> str:
        try:
            await handle(store, oid, RouteOrder(command_id=command_id, quotes=quotes()), actor="test")
            return "routed"
        except Exception as exc:
            return type(exc).__name__

    results: list[str] = []

    async def run(command_id: str) -> None:
        results.append(await route(command_id))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "router-a")
        tg.start_soon(run, "router-b")
    assert sorted(results) == ["InvalidTransition", "routed"]
    state = (await handle(store, oid, BuildTransaction(command_id="b"), actor="test")).state
    assert state.status == "building"
    assert (await load(store, oid)).state.version == 3


async def test_migrations_are_idempotent(
    database_url: str, pool: AsyncConnectionPool[AsyncConnection[Any]]
) -> None:
    from db.migrate import apply_migrations

    assert apply_migrations(database_url) == []
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM schema_migrations")
        row = await cur.fetchone()
    assert row is not None and row[0] >= 2


async def test_same_command_twice_stores_its_events_once_and_returns_them(store: PostgresEventStore) -> None:
    oid = new_order_id()
    await handle(store, oid, place_order(oid), actor="test")
    route = RouteOrder(command_id=f"{oid}:route", quotes=quotes())
    first = (await handle(store, oid, route, actor="worker:route", attempt=1)).recorded
    redelivered = await handle(store, oid, route, actor="worker:route", attempt=2)
    state, again = redelivered.state, redelivered.recorded
    assert [r.position for r in again] == [r.position for r in first]
    assert state.status == "routing" and state.version == 2
    assert [r.version for r in await store.read_stream(oid)] == [1, 2]


async def test_concurrent_duplicates_of_one_command_store_it_once(store: PostgresEventStore) -> None:
    oid = new_order_id()
    await handle(store, oid, place_order(oid), actor="test")
    route = RouteOrder(command_id=f"{oid}:route", quotes=quotes())
    results: list[list[int]] = []

    async def deliver() -> None:
        recorded = (await handle(store, oid, route, actor="worker:route")).recorded
        results.append([r.version for r in recorded])

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(deliver)
    assert results == [[2]] * 4
    assert [r.version for r in await store.read_stream(oid)] == [1, 2]


async def test_metadata_records_cause_actor_attempt_and_time(store: PostgresEventStore) -> None:
    from datetime import UTC, datetime

    oid = new_order_id()
    issued = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await handle(store, oid, place_order(oid), actor="api", attempt=1, issued_at=issued)
    (recorded,) = await store.read_stream(oid)
    assert recorded.metadata.correlation_id == oid
    assert recorded.metadata.causation_id == f"{oid}:place"
    assert (recorded.metadata.actor, recorded.metadata.attempt) == ("api", 1)
    assert recorded.metadata.issued_at == issued

"""The Postgres event store against a real server: what only it has (migrations), and
`handle` on it. The EventStore contract itself, run on every store, is
test_event_store_contract.py."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import PostgresEventStore
from domain.commands import BuildTransaction, RouteOrder
from domain.services.handling import handle, load
from tests.factories import new_order_id, place_order, quotes

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


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

"""Rebuilding projections into shadow tables and swapping them in, against a real Postgres: the
rebuilt tables equal the incrementally built ones, readers are served throughout, a rebuild
racing the live followers applies (and counts) everything once, and failures leave the live
tables as they were."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters import metrics
from adapters.database import Database
from adapters.postgres_event_store import PostgresEventStore, read_all
from domain.order import fold
from domain.ports import EventMetadata
from projections import (
    follower_status,
    orders_projection,
    rebuild,
    rebuild_errors,
    registry,
    stats_projection,
)
from projections.log_follower import LogFollower, read_checkpoint
from tests.benchmarks.simulated_log import write_log
from tests.integration.order_logs import HANDLERS, VERSIONS, follow_all, mixed_orders
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Pool = AsyncConnectionPool[AsyncConnection[Any]]
TABLES = {
    "orders": "id",
    "stats_orders": "order_id",
    "stats_user_pairs": "1, 2, 3, 4",
    "stats_pairs": "1, 2, 3",
}


async def snapshot(pool: Pool) -> dict[str, list[tuple[Any, ...]]]:
    async with pool.connection() as conn:
        return {
            table: await (await conn.execute(f"SELECT * FROM {table} ORDER BY {order}")).fetchall()
            for table, order in TABLES.items()
        }


async def catalog(pool: Pool) -> list[tuple[Any, ...]]:
    """Every index and constraint of the projections' tables, by name and definition."""
    async with pool.connection() as conn:
        indexes = await (
            await conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY 2",
                (list(TABLES),),
            )
        ).fetchall()
        constraints = await (
            await conn.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid::regclass::text = ANY(%s) ORDER BY 2",
                (list(TABLES),),
            )
        ).fetchall()
    return [*indexes, *constraints]


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_rebuild_equals_the_incrementally_built_model(
    own_pool: Pool, own_database_url: str, workers: int
) -> None:
    events = mixed_orders(300, seed=1)
    for part in range(4):  # the followers meet the log in slices, in small batches
        write_log(own_database_url, events[part * len(events) // 4 : (part + 1) * len(events) // 4])
        await follow_all(own_pool)
    incremental = await snapshot(own_pool)
    assert len(incremental["orders"]) == 300
    assert {r[8] for r in incremental["orders"]} >= {
        "confirmed",
        "failed",
        "cancelled",
        "waiting",
        "submitted",
    }
    indexes = await catalog(own_pool)

    report = await rebuild.rebuild(Database(own_database_url), workers=workers)  # 2: worker processes

    assert report.events == len(events)
    assert [p.position for p in report.projections] == [len(events)] * 2
    rebuilt = await snapshot(own_pool)
    for table in TABLES:
        assert rebuilt[table] == incremental[table], table
    assert await catalog(own_pool) == indexes
    async with own_pool.connection() as conn:
        leftovers = await (
            await conn.execute("SELECT relname FROM pg_class WHERE relname LIKE '%%rebuild%%'")
        ).fetchall()
    assert leftovers == []


async def test_readers_are_served_throughout_and_see_the_swap_at_once(
    own_pool: Pool, own_database_url: str
) -> None:
    write_log(own_database_url, mixed_orders(400, seed=2))
    await follow_all(own_pool, batch_size=500)
    async with own_pool.connection() as conn:
        expected = await (
            await conn.execute("SELECT count(*), max(version), min(id::text) FROM orders")
        ).fetchone()
    seen: list[tuple[Any, ...]] = []
    stop = threading.Event()

    def read() -> None:  # another client, reading as fast as it can
        with psycopg.connect(own_database_url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT count(*), max(version), min(id::text), 'orders'::regclass::oid FROM orders"
                ).fetchone()
                assert row is not None
                seen.append(row)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        wait_until(lambda: len(seen) > 5, 10, what="the reader to start")
        await rebuild.rebuild(
            Database(own_database_url), "orders", progress=lambda done, total: time.sleep(0.02)
        )
        count = len(seen)
        wait_until(lambda: len(seen) > count + 5, 10, what="reads after the swap")
    finally:
        stop.set()
        reader.join(10)
    assert all(row[:3] == expected for row in seen)  # every read saw every order
    tables = [row[3] for row in seen]
    assert len(set(tables)) == 2  # the old table, then the new one
    switch = tables.index(tables[-1])
    assert set(tables[:switch]) == {tables[0]} and set(tables[switch:]) == {tables[-1]}


async def test_the_swap_waits_out_a_readers_transaction(
    own_pool: Pool, own_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_log(own_database_url, mixed_orders(20, seed=3))
    await follow_all(own_pool)
    monkeypatch.setattr(rebuild, "SWAP_LOCK_TIMEOUT_MS", 100)
    released = threading.Event()
    reading = threading.Event()

    def long_reader() -> None:
        with psycopg.connect(own_database_url) as conn:  # a transaction holding its read lock
            conn.execute("SELECT count(*) FROM orders").fetchone()
            reading.set()
            time.sleep(0.4)  # holds the lock across several of the swap's lock timeouts
            conn.rollback()
            released.set()

    reader = threading.Thread(target=long_reader)
    reader.start()
    assert await asyncio.to_thread(reading.wait, 10)  # the lock is held before the rebuild starts
    report = await rebuild.rebuild(Database(own_database_url), "orders")
    reader.join(5)
    assert released.is_set() and report.projections[0].name == "orders"
    assert len((await snapshot(own_pool))["orders"]) == 20


def accepted_total() -> float:
    return sum(
        metrics.REGISTRY.get_sample_value("orderengine_orders_accepted_total", {"order_type": kind}) or 0.0
        for kind in ("market", "limit", "sniper")
    )


async def test_a_rebuild_racing_the_live_followers_applies_and_counts_everything_once(
    own_pool: Pool, own_database_url: str
) -> None:
    write_log(own_database_url, mixed_orders(300, seed=4))
    accepted_before = accepted_total()
    followers = [
        LogFollower(own_pool, name, handler, version=VERSIONS[name], batch_size=50, poll_interval=0.05)
        for name, handler in HANDLERS.items()
    ]
    running = [asyncio.create_task(f.run()) for f in followers]
    store = PostgresEventStore(own_pool.connection)
    later = mixed_orders(60, seed=5, start=datetime(2026, 11, 25, tzinfo=UTC))

    async def append_live() -> None:  # orders keep arriving, one append per event, during the rebuild
        versions: dict[str, int] = {}
        for r in later:
            meta = EventMetadata(
                correlation_id=r.stream_id, causation_id=f"{r.stream_id}:{r.version}", actor="test"
            )
            await store.append(r.stream_id, versions.get(r.stream_id, 0), [r.event], meta)
            versions[r.stream_id] = r.version
            await asyncio.sleep(0)

    async def caught_up() -> None:
        async with own_pool.connection() as conn:
            head = (await (await conn.execute("SELECT max(position) FROM events")).fetchone())[0]
        deadline = time.monotonic() + 20
        while True:
            async with own_pool.connection() as conn:
                if all([await read_checkpoint(conn, name) == head for name in HANDLERS]):
                    return
            assert time.monotonic() < deadline, "the followers did not catch up"
            await asyncio.sleep(0.05)

    try:
        await caught_up()  # running, as in production: the rebuild will stop at their checkpoints
        writer = asyncio.create_task(append_live())
        reports = [
            await rebuild.rebuild(Database(own_database_url)),
            await rebuild.rebuild(Database(own_database_url), "stats"),
        ]
        await writer
        await caught_up()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async with own_pool.connection() as conn:
        history = await read_all(conn, 0, 100_000)
    assert all(p.position <= history[-1].position for r in reports for p in r.projections)
    tables = await snapshot(own_pool)
    orders = {str(r[0]): r for r in tables["orders"]}
    streams = {e.stream_id for e in history}
    assert set(orders) == streams
    for stream in streams:
        state = fold(e.event for e in history if e.stream_id == stream)
        assert (orders[stream][8], orders[stream][21]) == (state.status, state.version)
    assert sum(r[3] for r in tables["stats_pairs"]) == len(streams)  # each order counted once
    assert {str(r[0]): (r[4], r[9]) for r in tables["stats_orders"]} == {
        s: (orders[s][8], orders[s][21]) for s in streams
    }
    # The follower counted each order placed once; the rebuilds' scans of history counted nothing.
    assert accepted_total() - accepted_before == len(streams)


async def test_a_new_or_stopped_projection_is_rebuilt_to_the_head(
    own_pool: Pool, own_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = mixed_orders(50, seed=6)
    write_log(own_database_url, events[:100])
    stats = LogFollower(own_pool, "stats", stats_projection.apply_batch, version=stats_projection.VERSION)
    await stats.step()  # the stats follower ran once, then stopped; the orders one never ran
    write_log(own_database_url, events[100:])
    monkeypatch.setattr(rebuild, "LIVE_WITHIN", len(events) - 101)  # 100 behind is "far" here
    report = await rebuild.rebuild(Database(own_database_url))
    async with own_pool.connection() as conn:
        assert await read_checkpoint(conn, "orders") == len(events) == report.projections[0].position
        assert await read_checkpoint(conn, "stats") == len(events) == report.projections[1].position
    rebuilt = await snapshot(own_pool)
    await rebuild.rebuild(Database(own_database_url), "orders")  # now level with its checkpoint: stays there
    assert await snapshot(own_pool) == rebuilt


async def test_status_reports_positions_and_lag(own_pool: Pool, own_database_url: str) -> None:
    events = mixed_orders(20, seed=8)
    write_log(own_database_url, events)
    await follow_all(own_pool)
    write_log(own_database_url, mixed_orders(5, seed=9, start=datetime(2026, 11, 24, 1, tzinfo=UTC)))
    statuses = {s.name: s for s in await follower_status.status(own_pool)}
    assert list(statuses) == ["orders", "stats", "redis_relay"]
    orders = statuses["orders"]
    assert (orders.position, orders.lag_events) == (len(events), orders.head - len(events))
    assert orders.lag_events > 0 and orders.lag_seconds > 0 and not orders.rebuilding
    assert statuses["redis_relay"].position == 0 and statuses["redis_relay"].idle_seconds is None
    assert (
        not orders.stalled(after_s=10**9) and orders.rebuildable and not statuses["redis_relay"].rebuildable
    )


async def test_a_projection_built_by_older_code_is_rebuilt_and_its_version_recorded(
    own_pool: Pool, own_database_url: str
) -> None:
    write_log(own_database_url, mixed_orders(200, seed=10))
    await follow_all(own_pool)
    current = await snapshot(own_pool)
    versions = {s.name: (s.version, s.code_version) for s in await follower_status.status(own_pool)}
    assert versions == {
        "orders": (orders_projection.VERSION, orders_projection.VERSION),
        "stats": (stats_projection.VERSION, stats_projection.VERSION),
        "redis_relay": (None, None),
    }
    assert await rebuild.rebuild_outdated(Database(own_database_url)) is None  # nothing to do

    # The orders table as version 1 of its code left it: no link, no cancellation.
    async with own_pool.connection() as conn:
        await conn.execute("UPDATE projection_checkpoints SET version = 1 WHERE name = 'orders'")
        await conn.execute("UPDATE orders SET explorer_url = NULL, cancel_reason = NULL, cancelled_by = NULL")
    statuses = {s.name: s for s in await follower_status.status(own_pool)}
    assert statuses["orders"].outdated and not statuses["stats"].outdated
    assert await snapshot(own_pool) != current

    report = await rebuild.rebuild_outdated(Database(own_database_url))
    assert report is not None and [p.name for p in report.projections] == ["orders"]
    assert await snapshot(own_pool) == current
    statuses = {s.name: s for s in await follower_status.status(own_pool)}
    assert statuses["orders"].version == orders_projection.VERSION and not statuses["orders"].outdated


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_rebuild_that_fails_leaves_the_live_tables_and_no_shadow(
    own_pool: Pool, own_database_url: str, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(rebuild, "LIVE_WITHIN", 0)  # so the rebuild reads to the head, past the follower
    write_log(own_database_url, mixed_orders(30, seed=7))
    await follow_all(own_pool)
    before = await snapshot(own_pool)
    async with own_pool.connection() as conn:  # an event its order does not allow, written by hand
        stream = (
            await (
                await conn.execute("SELECT id::text FROM orders WHERE status = 'confirmed' LIMIT 1")
            ).fetchone()
        )[0]
        await conn.execute(
            "INSERT INTO events (stream_id, version, type, data, metadata)"
            " SELECT stream_id, version + 1, type, data, metadata FROM events WHERE stream_id = %s"
            " ORDER BY version DESC LIMIT 1",
            (stream,),
        )
    with pytest.raises(rebuild_errors.UnfoldableLog, match=stream):
        await rebuild.rebuild(Database(own_database_url), "orders", workers=workers)
    assert await snapshot(own_pool) == before
    async with own_pool.connection() as conn:
        assert await (await conn.execute("SELECT to_regclass('orders__rebuild')")).fetchone() == (None,)


async def test_one_rebuild_of_a_projection_at_a_time(own_pool: Pool, own_database_url: str) -> None:
    async with await AsyncConnection.connect(own_database_url, autocommit=True) as holder:
        await holder.execute("SELECT pg_advisory_lock(%s)", (registry.PROJECTIONS["orders"].lock_key,))
        with pytest.raises(rebuild.RebuildRunning):
            await rebuild.rebuild(Database(own_database_url), "orders")
        assert [s.rebuilding for s in await follower_status.status(Database(own_database_url))] == [
            True,
            False,
            False,
        ]
    with pytest.raises(registry.UnknownProjection):
        await rebuild.rebuild(Database(own_database_url), "nope")

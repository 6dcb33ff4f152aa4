"""The outbox relay and the orders projection, fed from the real log."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import PostgresEventStore
from adapters.redis_layout import RedisLayout
from domain.commands import BuildTransaction, RouteOrder
from domain.services.handling import handle, load
from projections import orders_projection
from projections.log_follower import LogFollower, write_checkpoint
from projections.order_views import find_order
from projections.redis_relay import RedisRelay
from tests.factories import new_order_id, place_order, quotes

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Pool = AsyncConnectionPool[AsyncConnection[Any]]


async def drain(follower: LogFollower) -> None:
    while await follower.step():
        pass


async def routed_order(store: PostgresEventStore) -> str:
    oid = new_order_id()
    await handle(store, oid, place_order(oid), actor="test")
    await handle(store, oid, RouteOrder(command_id="r", quotes=quotes()), actor="test")
    await handle(store, oid, BuildTransaction(command_id="b"), actor="test")
    return oid


async def test_relay_publishes_each_event_once_with_log_numbers_as_ids(
    pool: Pool, store: PostgresEventStore, aredis: aioredis.Redis, redis_prefix: str
) -> None:
    oid = await routed_order(store)
    relay = LogFollower(
        pool, f"relay-{redis_prefix}", RedisRelay(aredis, RedisLayout(redis_prefix)), version=None
    )
    await drain(relay)
    entries = await aredis.xrange(RedisLayout(redis_prefix).order_stream(oid))
    assert [e[0] for e in entries] == ["1-0", "2-0", "3-0"]
    assert [e[1]["status"] for e in entries] == ["pending", "routing", "building"]
    history = await store.read_stream(oid)
    mine = [e for e in await aredis.xrange(RedisLayout(redis_prefix).all_orders) if e[1]["order_id"] == oid]
    assert [e[0] for e in mine] == [f"{r.position}-0" for r in history]

    # A crash before the checkpoint commit replays the batch: nothing is duplicated.
    async with pool.connection() as conn:
        await write_checkpoint(conn, relay.name, 0)
    await drain(relay)
    assert len(await aredis.xrange(RedisLayout(redis_prefix).order_stream(oid))) == 3


async def test_projection_row_equals_fold_of_the_log(pool: Pool, store: PostgresEventStore) -> None:
    oid = await routed_order(store)
    projection = LogFollower(
        pool, orders_projection.NAME, orders_projection.apply_batch, version=orders_projection.VERSION
    )
    await drain(projection)
    view = await find_order(pool, store, oid)
    state = (await load(store, oid)).state
    assert view is not None
    assert view["status"] == state.status == "building"
    assert view["version"] == state.version == 3
    assert view["chosenDex"] == state.chosen_dex
    assert view["minOut"] == str(state.min_out)
    assert {q["dex"] for q in view["quotes"]} == {"raydium", "meteora"}


async def test_order_view_falls_back_to_the_log_before_projection(
    pool: Pool, store: PostgresEventStore
) -> None:
    oid = new_order_id()
    await handle(store, oid, place_order(oid), actor="test")
    view = await find_order(pool, store, oid)
    assert view is not None and view["status"] == "pending" and view["orderId"] == oid
    assert await find_order(pool, store, new_order_id()) is None


async def test_relay_trims_the_all_orders_stream_and_expires_finished_orders(
    pool: Pool, store: PostgresEventStore, aredis: aioredis.Redis, redis_prefix: str
) -> None:
    from domain.commands import FailOrder

    oids = [await routed_order(store) for _ in range(120)]  # 360 events
    await handle(store, oids[0], FailOrder(command_id="f", step="submit", error="gave up"), actor="test")
    relay = LogFollower(
        pool,
        f"relay-{redis_prefix}",
        RedisRelay(aredis, RedisLayout(redis_prefix), stream_maxlen=100, order_stream_ttl_s=600),
        version=None,
    )
    await drain(relay)
    # Approximate trimming drops whole macro-nodes: bounded, never exactly 100.
    assert await aredis.xlen(RedisLayout(redis_prefix).all_orders) < 360
    assert 0 < await aredis.ttl(RedisLayout(redis_prefix).order_stream(oids[0])) <= 600
    assert await aredis.ttl(RedisLayout(redis_prefix).order_stream(oids[1])) == -1  # still running: kept


async def test_projection_skips_a_stream_that_is_not_an_order_and_keeps_going(
    pool: Pool, store: PostgresEventStore
) -> None:
    from domain.ports import EventMetadata
    from tests.factories import pending_event

    foreign = "not-an-order-id"
    await store.append(
        foreign,
        0,
        [pending_event(foreign)],
        EventMetadata(correlation_id=foreign, causation_id="x", actor="t"),
    )
    oid = await routed_order(store)
    projection = LogFollower(
        pool, orders_projection.NAME, orders_projection.apply_batch, version=orders_projection.VERSION
    )
    await drain(projection)
    view = await find_order(pool, store, oid)
    assert view is not None and view["status"] == "building"

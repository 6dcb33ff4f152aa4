"""The shared per-process reader against a real Redis: routing, overflow, clean-up."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout
from api.fanout import StreamHub

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def publish(client: aioredis.Redis, prefix: str, position: int, order_id: str, user_id: str) -> None:
    fields = {"position": str(position), "order_id": order_id, "user_id": user_id, "version": "1"}
    await client.xadd(RedisLayout(prefix).all_orders, fields, id=f"{position}-0")  # type: ignore[arg-type]


async def test_entries_reach_the_subscribers_of_their_order_and_user(
    aredis: aioredis.Redis, redis_prefix: str
) -> None:
    await publish(aredis, redis_prefix, 1, "old", "alice")  # before the hub starts: history, not live
    hub = StreamHub(aredis, RedisLayout(redis_prefix), block_ms=100)
    await hub.start_position()
    task = asyncio.create_task(hub.run())
    try:
        with hub.order("o1") as o1, hub.user("alice") as alice, hub.user("bob") as bob:
            await publish(aredis, redis_prefix, 2, "o1", "alice")
            await publish(aredis, redis_prefix, 3, "o2", "bob")
            async with asyncio.timeout(5):
                assert [e.fields["position"] for e in await o1.next_batch()] == ["2"]
                assert [e.fields["position"] for e in await alice.next_batch()] == ["2"]
                assert [e.fields["position"] for e in await bob.next_batch()] == ["3"]
            assert hub.subscribers == 3
        assert hub.subscribers == 0  # leaving drops the subscription at once
    finally:
        task.cancel()


async def test_a_subscriber_that_falls_behind_is_told_to_resync_instead_of_growing(
    aredis: aioredis.Redis, redis_prefix: str
) -> None:
    hub = StreamHub(aredis, RedisLayout(redis_prefix), block_ms=100, max_pending=5)
    await hub.start_position()
    task = asyncio.create_task(hub.run())
    try:
        with hub.order("busy") as sub:
            for position in range(1, 21):
                await publish(aredis, redis_prefix, position, "busy", "u")
            async with asyncio.timeout(5):
                while hub.entries_read < 20:
                    await asyncio.sleep(0.01)
            batch = await sub.next_batch()
            assert len(batch) == 5  # bounded, the oldest kept
            assert sub.take_overflow() is True and sub.take_overflow() is False
    finally:
        task.cancel()

"""The deployment-wide execution limiter on a real Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout
from adapters.redis_limiter import ExecutionLimiter

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_in_flight_slots_are_capped_and_released(aredis: aioredis.Redis, redis_prefix: str) -> None:
    limiter = ExecutionLimiter(aredis, RedisLayout(redis_prefix), max_in_flight=2, per_minute=100)
    assert await limiter.acquire("a") is None
    assert await limiter.acquire("b") is None
    assert await limiter.acquire("c") == -1
    assert await limiter.acquire("a") is None  # renewing a held slot always works
    await limiter.release("a")
    assert await limiter.acquire("c") is None
    assert await limiter.in_flight() == 2


async def test_start_rate_is_limited_per_minute(aredis: aioredis.Redis, redis_prefix: str) -> None:
    limiter = ExecutionLimiter(aredis, RedisLayout(redis_prefix), max_in_flight=10, per_minute=3)
    for order in ("a", "b", "c"):
        assert await limiter.acquire(order) is None
        await limiter.release(order)
    wait = await limiter.acquire("d")
    assert wait is not None and 0 < wait <= 60_000


async def test_expired_lease_frees_the_slot(aredis: aioredis.Redis, redis_prefix: str) -> None:
    limiter = ExecutionLimiter(aredis, RedisLayout(redis_prefix), max_in_flight=1, per_minute=100, lease_ms=1)
    assert await limiter.acquire("crashed") is None
    # The lease of 1 ms lapses before the next Redis round trip completes.
    deadline = 50
    while deadline and (result := await limiter.acquire("next")) is not None:
        deadline -= 1
    assert result is None

"""The per-user submission rate limit against a real Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from adapters.redis_rate_limit import RateLimiter

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_user_gets_the_burst_then_waits_about_one_interval(
    aredis: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = RateLimiter(aredis, redis_prefix, "orders", per_minute=60, burst=4)
    waits = [await limiter.check("alice") for _ in range(6)]
    assert waits[:5] == [0.0] * 5  # the burst plus the one the rate allows now
    assert 0.9 <= waits[5] <= 1.0  # 60/min: the next one in about a second


async def test_users_are_limited_separately(aredis: aioredis.Redis, redis_prefix: str) -> None:
    limiter = RateLimiter(aredis, redis_prefix, "orders", per_minute=60, burst=0)
    assert await limiter.check("alice") == 0.0
    assert await limiter.check("alice") > 0
    assert await limiter.check("bob") == 0.0


async def test_zero_per_minute_never_limits(aredis: aioredis.Redis, redis_prefix: str) -> None:
    limiter = RateLimiter(aredis, redis_prefix, "orders", per_minute=0, burst=0)
    assert [await limiter.check("alice") for _ in range(50)] == [0.0] * 50

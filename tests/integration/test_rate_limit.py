"""The per-user submission rate limit against a real Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout
from adapters.redis_rate_limit import RateLimiter
from adapters.settings import _FIELDS

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_user_gets_the_burst_then_waits_about_one_interval(
    aredis: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = RateLimiter(aredis, RedisLayout(redis_prefix), "orders", per_minute=60, burst=4)
    waits = [await limiter.check("alice") for _ in range(6)]
    assert waits[:5] == [0.0] * 5  # the burst plus the one the rate allows now
    assert 0.9 <= waits[5] <= 1.0  # 60/min: the next one in about a second


async def test_users_are_limited_separately(aredis: aioredis.Redis, redis_prefix: str) -> None:
    limiter = RateLimiter(aredis, RedisLayout(redis_prefix), "orders", per_minute=60, burst=0)
    assert await limiter.check("alice") == 0.0
    assert await limiter.check("alice") > 0
    assert await limiter.check("bob") == 0.0


async def test_zero_per_minute_never_limits(aredis: aioredis.Redis, redis_prefix: str) -> None:
    limiter = RateLimiter(aredis, RedisLayout(redis_prefix), "orders", per_minute=0, burst=0)
    assert [await limiter.check("alice") for _ in range(50)] == [0.0] * 50


# The highest ORDER_RATE_PER_MIN the settings accept (6,000,000: 0.01 ms apart).
HIGHEST_RATE = next(f.info.le for f in _FIELDS if f.name == "order_rate_per_min")  # type: ignore[attr-defined]


@pytest.mark.parametrize("per_minute", [HIGHEST_RATE, 10_000_000])
async def test_a_rate_of_a_fraction_of_a_millisecond_works(
    aredis: aioredis.Redis, redis_prefix: str, per_minute: int
) -> None:
    # The interval is 0.01 ms or less: before rounding, SET … PX got a fraction and every
    # check failed with "value is not an integer or out of range".
    limiter = RateLimiter(aredis, RedisLayout(redis_prefix), "orders", per_minute=per_minute, burst=3)
    waits = [await limiter.check("alice") for _ in range(200)]
    assert waits[:3] == [0.0] * 3  # the burst (the fourth is within float error of its limit)
    assert all(0.0 <= w <= 0.001 for w in waits)  # a refusal is at most 1 ms (rounded up)
    assert await aredis.pttl(f"{redis_prefix}:ratelimit:orders:alice") > 0


async def test_a_rate_that_does_not_divide_a_minute_waits_its_interval(
    aredis: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = RateLimiter(
        aredis, RedisLayout(redis_prefix), "orders", per_minute=7, burst=0
    )  # 8571.43 ms apart
    assert await limiter.check("alice") == 0.0
    assert 8.5 <= await limiter.check("alice") <= 8.572

"""The per-user rate limit's arithmetic on a real Redis: whole microseconds only, at every
ORDER_RATE_PER_MIN the settings accept (issue 13: rates of 100,000/min and more)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout
from adapters.redis_rate_limit import RateLimiter

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.mark.parametrize("per_minute", [100_000, 600_000, 6_000_000])
@pytest.mark.parametrize("burst", [0, 60, 1_000_000])
async def test_the_stored_arrival_time_is_a_whole_number_of_microseconds(
    aredis: aioredis.Redis, redis_prefix: str, per_minute: int, burst: int
) -> None:
    # Before: the interval went to the script as a float (0.6, 0.1, 0.01 ms) and the
    # arrival time was stored as a fraction of a millisecond.
    limiter = RateLimiter(aredis, RedisLayout(redis_prefix), "orders", per_minute=per_minute, burst=burst)
    waits = [await limiter.check("alice") for _ in range(20)]
    stored = await aredis.get(f"{redis_prefix}:ratelimit:orders:alice")
    assert stored is not None and stored.isdigit(), stored
    # Whole microseconds, up to the float the seconds are returned as.
    assert all(abs(w * 1_000_000 - round(w * 1_000_000)) < 1e-3 for w in waits)
    assert await aredis.pttl(f"{redis_prefix}:ratelimit:orders:alice") > 0


async def test_a_full_burst_then_refusals_that_do_not_push_the_limit_further(
    aredis: aioredis.Redis, redis_prefix: str
) -> None:
    # 60/min: 1 s apart, so the test's own run time cannot free a slot.
    limiter = RateLimiter(aredis, RedisLayout(redis_prefix), "orders", per_minute=60, burst=2)
    waits = [await limiter.check("bob") for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]  # the burst plus the one the rate allows now
    assert 0.99 < waits[4] <= waits[3] <= 1.0  # a refusal is not counted against the user

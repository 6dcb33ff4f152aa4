"""Per-user request rate limits in Redis (GCRA: a sustained rate plus a burst).

One key per user holds the "theoretical arrival time" of their next request;
the check and the update are one Lua script, so every API process shares the
limit and a refusal says exactly how long to wait (for `Retry-After`).

Key: `{prefix}:ratelimit:{name}:{user}` (adapters/redis_layout.py), a string holding
that time in whole microseconds since the epoch, expiring once it has passed.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout

MICROSECONDS_PER_MINUTE = 60_000_000

# Integer arithmetic throughout: times and the interval are whole microseconds (exact in
# Lua's doubles until the year 2255), so nothing fractional is stored, sent as PX or
# returned (Redis truncates a fractional reply: 0.4 would read as "allowed"). A rate that
# does not divide a minute (7/min: 8,571,428.57 µs) gets its interval rounded up, so the
# limit is never exceeded and is off by less than 1 µs per request.
_GCRA = """
local key = KEYS[1]
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', key) or now)
if tat < now then tat = now end
local allowed_from = tat - burst * interval
if now < allowed_from then
  return allowed_from - now
end
local next_tat = tat + interval
redis.call('SET', key, string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1001)
return 0
"""


def interval_us(per_minute: int) -> int:
    """Whole microseconds between two requests at `per_minute`, rounded up (0: no limit)."""
    return -(-MICROSECONDS_PER_MINUTE // per_minute) if per_minute else 0


class RateLimiter:
    """`per_minute` requests per user on average, `burst` more at once; 0 per minute turns it off."""

    def __init__(
        self, client: aioredis.Redis, layout: RedisLayout, name: str, per_minute: int, burst: int
    ) -> None:
        self._client = client
        self._layout = layout
        self._name = name
        self._interval_us = interval_us(per_minute)
        self._burst = burst
        self._script = client.register_script(_GCRA)

    async def check(self, user: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if not self._interval_us:
            return 0.0
        key = self._layout.rate_limit(self._name, user)
        wait_us = await self._script(keys=[key], args=[self._interval_us, self._burst])
        return int(wait_us) / 1_000_000

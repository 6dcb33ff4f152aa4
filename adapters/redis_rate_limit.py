"""Per-user request rate limits in Redis (GCRA: a sustained rate plus a burst).

One key per user holds the "theoretical arrival time" of their next request;
the check and the update are one Lua script, so every API process shares the
limit and a refusal says exactly how long to wait (for `Retry-After`).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout

# The interval is a fraction of a millisecond above 60,000/min and not whole below it
# (60,000/7 ms): the TAT is stored as a fraction, but PX and the reply (which Redis
# truncates to an integer, so 0.4 ms would read as "allowed") are rounded up to whole ms.
_GCRA = """
local key = KEYS[1]
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', key) or now)
if tat < now then tat = now end
local allowed_from = tat - burst * interval
if now < allowed_from then
  return math.ceil(allowed_from - now)
end
local next_tat = tat + interval
redis.call('SET', key, next_tat, 'PX', math.ceil(next_tat - now) + 1000)
return 0
"""


class RateLimiter:
    """`per_minute` requests per user on average, `burst` more at once; 0 per minute turns it off."""

    def __init__(
        self, client: aioredis.Redis, layout: RedisLayout, name: str, per_minute: int, burst: int
    ) -> None:
        self._client = client
        self._layout = layout
        self._name = name
        self._interval_ms = 60_000 / per_minute if per_minute else 0.0
        self._burst = burst
        self._script = client.register_script(_GCRA)

    async def check(self, user: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if not self._interval_ms:
            return 0.0
        key = self._layout.rate_limit(self._name, user)
        wait_ms = await self._script(keys=[key], args=[self._interval_ms, self._burst])
        return float(wait_ms) / 1000

"""Deployment-wide limits on order execution, kept in Redis.

- In flight: at most `limit` orders hold a slot (from routing until they end).
  Slots are leases in a sorted set (`{p}:limiter:inflight`, score = expiry
  in ms) so a crashed worker's slot frees itself.
- Start rate: at most `per_minute` orders take a slot in any 60 s window
  (`{p}:limiter:starts`, score = start time in ms; keys in adapters/redis_layout.py).

Both checks and the grant happen in one Lua script, atomically across every
worker process. The same script answers a `peek` (would a slot be granted now?) without
granting, so that a step can look before it spends a quote and take the slot only
once it is about to record the start (an order starts when its routing is recorded).
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout

_ACQUIRE = """
local inflight, starts = KEYS[1], KEYS[2]
local id, limit, per_minute = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local lease_ms, grant = tonumber(ARGV[4]), ARGV[5] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
if redis.call('ZSCORE', inflight, id) then
  if grant then
    redis.call('ZADD', inflight, now + lease_ms, id)
  end
  return 0
end
if redis.call('ZCARD', inflight) >= limit then
  return -1
end
redis.call('ZREMRANGEBYSCORE', starts, '-inf', now - 60000)
if redis.call('ZCARD', starts) >= per_minute then
  local oldest = redis.call('ZRANGE', starts, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + 60000 - now)
end
if not grant then
  return 0
end
redis.call('ZADD', starts, now, id .. ':' .. now)
redis.call('ZADD', inflight, now + lease_ms, id)
redis.call('PEXPIRE', starts, 61000)
return 0
"""


_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""


# Starts within the last 60 s by Redis's clock, the window `_ACQUIRE` enforces: a reader
# using its own clock would count against a different minute than the limiter does.
_STARTS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now - 60000, '+inf')
"""


_LEASES_KEPT = 100_000


class ExecutionLimiter:
    """The `ExecutionSlots` port in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        layout: RedisLayout,
        *,
        max_in_flight: int,
        per_minute: int,
        lease_ms: int = 300_000,
    ) -> None:
        self.client = client
        self.inflight_key = layout.limiter_inflight
        self.starts_key = layout.limiter_starts
        self.max_in_flight = max_in_flight
        self.per_minute = per_minute
        self.lease_ms = lease_ms
        self._script = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._starts = client.register_script(_STARTS)
        # When this process last took or extended each slot: an order whose steps follow
        # each other within a fraction of its lease needs no renewal on every step.
        self._leased_at: dict[str, float] = {}

    async def acquire(self, order_id: str) -> int | None:
        """Take (or renew) the order's slot. None if granted; else ms to wait, or -1 if full."""
        result = await self._run(order_id, grant=True)
        if result == 0:
            self._leased(order_id)
        return None if result == 0 else result

    async def peek(self, order_id: str) -> int | None:
        """What `acquire` would answer now, without taking anything."""
        result = await self._run(order_id, grant=False)
        return None if result == 0 else result

    async def _run(self, order_id: str, *, grant: bool) -> int:
        return int(
            await self._script(
                keys=[self.inflight_key, self.starts_key],
                args=[order_id, self.max_in_flight, self.per_minute, self.lease_ms, "1" if grant else "0"],
            )
        )

    async def renew(self, order_id: str) -> bool:
        """Extend the order's lease if it holds a slot; never takes a new one (or a start).

        A slot this process took or extended less than a quarter of a lease ago is taken
        as held, without asking Redis."""
        leased_at = self._leased_at.get(order_id)
        if leased_at is not None and time.monotonic() - leased_at < self.lease_ms / 4000:
            return True
        renewed = bool(await self._renew(keys=[self.inflight_key], args=[order_id, self.lease_ms]))
        if renewed:
            self._leased(order_id)
        return renewed

    async def release(self, order_id: str) -> None:
        self._leased_at.pop(order_id, None)
        await self.client.zrem(self.inflight_key, order_id)

    def _leased(self, order_id: str) -> None:
        now = time.monotonic()
        if len(self._leased_at) > _LEASES_KEPT:  # slots released by other processes
            horizon = now - self.lease_ms / 1000
            self._leased_at = {k: t for k, t in self._leased_at.items() if t > horizon}
        self._leased_at[order_id] = now

    async def in_flight(self) -> int:
        return int(await self.client.zcard(self.inflight_key))

    async def starts_last_minute(self) -> int:
        """Orders that took a slot in the last 60 s: what `per_minute` is checked against."""
        return int(await self._starts(keys=[self.starts_key]))

"""Re-drive claims in Redis (`{p}:redriven:{orderId}:{version}`): the `RedriveClaims` port,
so an order is re-driven once in each state, and again only once the claim expires.

The expiry is what makes re-driving a safety net that always holds: a re-driven message
can itself be lost (held by a worker whose connection to Redis broke mid-message, which
Dramatiq gives back only if that worker dies), and an order still in the same state after
the claim expired is re-driven again. Ten times STUCK_AFTER_S, so an order merely waiting
for a slot is not handed a new message on every check."""

from __future__ import annotations

import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout

CLAIM_TTL_S = 86_400
MIN_CLAIM_TTL_S = 60


def claim_ttl_s(stuck_after_s: int) -> int:
    """How long a re-drive claim holds: ten stuck periods, at least a minute, at most a day."""
    return min(CLAIM_TTL_S, max(MIN_CLAIM_TTL_S, 10 * stuck_after_s))


class RedisRedriveClaims:
    def __init__(self, client: aioredis.Redis, layout: RedisLayout, *, ttl_s: int = CLAIM_TTL_S) -> None:
        self.client = client
        self.layout = layout
        self.ttl_s = ttl_s

    async def claim(self, order_id: str, version: int) -> bool:
        return bool(
            await self.client.set(self.layout.redriven(order_id, version), "1", nx=True, ex=self.ttl_s)
        )

    async def release(self, order_id: str, version: int) -> None:
        await self.client.delete(self.layout.redriven(order_id, version))

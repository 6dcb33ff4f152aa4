"""Re-drive claims in Redis (`{p}:redriven:{orderId}:{version}`, a day): the
`RedriveClaims` port, so an order is re-driven at most once in each state."""

from __future__ import annotations

import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout

CLAIM_TTL_S = 86_400


class RedisRedriveClaims:
    def __init__(self, client: aioredis.Redis, layout: RedisLayout) -> None:
        self.client = client
        self.layout = layout

    async def claim(self, order_id: str, version: int) -> bool:
        return bool(
            await self.client.set(self.layout.redriven(order_id, version), "1", nx=True, ex=CLAIM_TTL_S)
        )

    async def release(self, order_id: str, version: int) -> None:
        await self.client.delete(self.layout.redriven(order_id, version))

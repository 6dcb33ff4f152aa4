"""The execution steps on the real store and limiter, with instant fake DEXes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from adapters.in_memory import RecordingStepQueue
from adapters.postgres_event_store import PostgresEventStore
from adapters.redis_layout import RedisLayout
from adapters.redis_limiter import ExecutionLimiter
from domain.errors import DomainError
from domain.events import Quote
from domain.ports import SwapReceipt
from domain.services.execution import ExecutionPolicy, OrderExecution
from domain.services.handling import handle, load
from tests.factories import new_order_id, place_order

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


class InstantDex:
    def __init__(self, name: str) -> None:
        self.name = name

    async def quote(self, token_in: str, token_out: str, amount: Decimal) -> Quote:
        await asyncio.sleep(0)  # let a concurrent copy of the step interleave here
        return Quote(dex=self.name, price=Decimal(150), fee=Decimal("0.003"), liquidity=Decimal(10_000))

    async def submit(self, *args: object) -> str:  # pragma: no cover - not used here
        raise NotImplementedError

    async def confirm(self, *args: object) -> SwapReceipt:  # pragma: no cover - not used here
        raise NotImplementedError


async def test_a_duplicate_route_that_loses_keeps_the_winners_slot(
    store: PostgresEventStore, aredis: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = ExecutionLimiter(aredis, RedisLayout(redis_prefix), max_in_flight=10, per_minute=100)
    steps = OrderExecution(
        store,
        {"raydium": InstantDex("raydium")},  # type: ignore[dict-item]
        limiter,
        RecordingStepQueue(),
        ExecutionPolicy(max_attempts=3, backoff_base_ms=50, quote_timeout_s=1),
        clock=lambda: datetime.now(UTC),
    )
    oid = new_order_id()
    await handle(store, oid, place_order(oid), actor="test")

    # The same order routed by two messages at once (a re-drive beside the original).
    results = await asyncio.gather(
        steps.run("route", oid, 1, "message-a"),
        steps.run("route", oid, 1, "message-b"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, DomainError) for r in results) == 1
    assert (await load(store, oid)).state.status == "routing"
    assert await limiter.in_flight() == 1  # the loser did not free the slot the order runs on


async def test_renew_extends_a_held_slot_and_never_takes_a_new_one(
    aredis: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = ExecutionLimiter(aredis, RedisLayout(redis_prefix), max_in_flight=1, per_minute=100)
    assert await limiter.renew("a") is False
    assert await limiter.in_flight() == 0
    assert await limiter.acquire("a") is None
    assert await limiter.renew("a") is True

"""The composition root: every pool, client, adapter and service, built from `Settings`.

`bootstrap(settings)` returns one typed `Engine`; the API, the worker, the scheduler
and the operator commands each build theirs once and pass it to their entry points
(injected, never looked up). Building connects to nothing: `await engine.open()` on the
event loop that will use it opens the pool (Redis clients connect on first use), and
`await engine.close()` releases everything.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis.asyncio as aioredis

from adapters import mock_dex
from adapters.database import Database
from adapters.market import RedisMarket
from adapters.postgres_event_store import PostgresEventStore
from adapters.redis_claims import RedisRedriveClaims, claim_ttl_s
from adapters.redis_layout import RedisLayout
from adapters.redis_limiter import ExecutionLimiter
from adapters.redis_pipelining import AutoPipelinedRedis
from adapters.redis_rate_limit import RateLimiter
from adapters.settings import Settings
from adapters.solana.rpc import ChainRpc
from adapters.solana.venues import make_onchain_venues
from adapters.step_queue import DramatiqStepQueue
from domain.ports import Dex
from domain.services.cancelling import Cancellation
from domain.services.execution import ExecutionPolicy, OrderExecution
from domain.services.placing import Placement
from domain.services.redrive import StuckOrders
from domain.services.waiting import WaitingOrders
from projections.order_views import PostgresOrderFinder

MAX_REDIS_CONNECTIONS = 1000


def require_urls(settings: Settings) -> tuple[str, str]:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError(
            "DATABASE_URL and REDIS_URL must be set (./scripts/run.sh starts embedded servers and sets them)"
        )
    return settings.database_url, settings.redis_url


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Engine:
    """Everything one engine process uses, wired together."""

    settings: Settings
    database: Database
    # Commands and pipelines; blocking reads (XREAD BLOCK) get a client of their own.
    redis: aioredis.Redis
    layout: RedisLayout
    store: PostgresEventStore
    queue: DramatiqStepQueue
    slots: ExecutionLimiter
    submission_rate: RateLimiter
    market: RedisMarket
    dexes: dict[str, Dex]
    # The Solana RPC client of the on-chain venues (USE_REAL_DEVNET=true), closed at exit.
    chain: ChainRpc | None
    orders: PostgresOrderFinder
    placement: Placement
    cancellation: Cancellation
    execution: OrderExecution
    waiting: WaitingOrders
    stuck: StuckOrders
    clock: Callable[[], datetime] = utc_now
    _blocking_clients: list[aioredis.Redis] = field(default_factory=list)

    def blocking_redis(self) -> aioredis.Redis:
        """A Redis client of its own, for a reader that blocks on the server (XREAD BLOCK)."""
        client = _redis_client(self.settings)
        self._blocking_clients.append(client)
        return client

    async def open(self) -> None:
        require_urls(self.settings)
        await self.database.open()

    async def close(self) -> None:
        if self.chain is not None:
            await self.chain.close()
        for client in self._blocking_clients:
            await client.aclose()
        await self.redis.aclose()
        await self.database.close()

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _redis_client(settings: Settings, *, pipelined: bool = False) -> aioredis.Redis:
    """A client for commands (`pipelined`: batched by turn of the loop) or for blocking reads.

    Without a URL (an app built only for its OpenAPI document) the client is never used:
    `Engine.open` refuses to start without both URLs."""
    cls = AutoPipelinedRedis if pipelined else aioredis.Redis
    # More connections than the default 100: a pipeline takes one, but a burst of requests
    # that miss each other's turn of the loop each take one, and saturation must never
    # look like Redis being down (redis-py answers "Too many connections" past the cap).
    if settings.redis_url is None:
        return cls(decode_responses=True, max_connections=MAX_REDIS_CONNECTIONS)
    return cls.from_url(settings.redis_url, decode_responses=True, max_connections=MAX_REDIS_CONNECTIONS)


def bootstrap(settings: Settings, *, role: str = "engine", pool_min: int = 1, pool_max: int = 10) -> Engine:
    """Wire the engine from `settings` for a process of `role` (api, worker, scheduler: it
    names the process's Postgres sessions); connects to nothing (`Engine.open` does)."""
    database = Database(
        settings.database_url or "", min_size=pool_min, max_size=pool_max, name=f"orderengine-{role}"
    )
    redis = _redis_client(settings, pipelined=True)
    layout = RedisLayout(settings.redis_prefix)
    store = PostgresEventStore(database.pool.connection)
    queue = DramatiqStepQueue(redis, layout)
    slots = ExecutionLimiter(
        redis, layout, max_in_flight=settings.queue_max_concurrent, per_minute=settings.order_processor_rate
    )
    rate = RateLimiter(
        redis,
        layout,
        "orders",
        per_minute=settings.order_rate_per_min,
        burst=settings.order_rate_burst,
    )
    market = RedisMarket(redis, layout)
    chain: ChainRpc | None = None
    if settings.use_real_devnet:
        dexes, chain = make_onchain_venues(settings)
    else:
        dexes = make_dexes(settings, redis, layout, market)
    orders = PostgresOrderFinder(database.pool)
    policy = ExecutionPolicy(
        max_attempts=settings.max_retries,
        backoff_base_ms=settings.backoff_base_ms,
        quote_timeout_s=settings.quote_timeout_ms / 1000,
        max_reissues=settings.solana_max_reissues,
    )
    return Engine(
        settings=settings,
        database=database,
        redis=redis,
        layout=layout,
        store=store,
        queue=queue,
        slots=slots,
        submission_rate=rate,
        market=market,
        dexes=dexes,
        chain=chain,
        orders=orders,
        placement=Placement(store, queue, rate, utc_now),
        cancellation=Cancellation(store, utc_now),
        execution=OrderExecution(store, dexes, slots, queue, policy, utc_now, random.Random()),
        waiting=WaitingOrders(store, orders, queue, market, utc_now),
        stuck=StuckOrders(
            orders,
            queue,
            RedisRedriveClaims(redis, layout, ttl_s=claim_ttl_s(settings.stuck_after_s)),
            timedelta(seconds=settings.stuck_after_s),
            utc_now,
        ),
    )


@asynccontextmanager
async def operator_database(url: str) -> AsyncIterator[Database]:
    """The database of an operator command (replay, audit, projections): a small pool, opened
    only once a first connection shows the server is there, so an unreachable one fails at
    once with its own error instead of a pool timeout."""
    db = Database(url, min_size=1, max_size=4, name="orderengine-cli")
    async with await db.connect():
        pass
    await db.open()
    try:
        yield db
    finally:
        await db.close()


def make_dexes(
    settings: Settings, redis: aioredis.Redis, layout: RedisLayout, market: RedisMarket
) -> dict[str, Dex]:
    """The mock venues (USE_REAL_DEVNET=false)."""
    rng = random.Random(settings.mock_seed)
    failures = mock_dex.FailurePlan(
        rate=settings.mock_fail_rate, first_n=settings.mock_fail_first_n, rng=random.Random(rng.random())
    )
    common: dict[str, object] = {
        "quote_ms": (settings.mock_quote_min_ms, settings.mock_quote_max_ms),
        "swap_ms": (settings.mock_swap_min_ms, settings.mock_swap_max_ms),
        "latency_scale": Decimal(settings.mock_latency_scale),
        "failures": failures,
        "ledger": mock_dex.RedisSwapLedger(redis, layout),
        "market": market,
        "explorer_tx_url": settings.mock_explorer_tx_url or None,
    }
    return {
        "raydium": mock_dex.raydium(rng=random.Random(rng.random()), **common),
        "meteora": mock_dex.meteora(rng=random.Random(rng.random()), **common),
    }

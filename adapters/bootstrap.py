"""The composition root: builds every client and pool from one `Settings`.

Nothing here runs at import time; each process (API, worker thread, scheduler,
CLI) calls what it needs once it knows its settings.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import redis
import redis.asyncio as aioredis
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters import mock_dex
from adapters.market import RedisMarket
from adapters.settings import Settings
from domain.ports import Dex


def require_urls(settings: Settings) -> tuple[str, str]:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError(
            "DATABASE_URL and REDIS_URL must be set (./scripts/run.sh starts embedded servers and sets them)"
        )
    return settings.database_url, settings.redis_url


def make_pool(
    settings: Settings, *, min_size: int = 1, max_size: int = 10
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """An unopened async pool of autocommit connections; `await pool.open()` on the loop that uses it."""
    database_url, _ = require_urls(settings)
    return AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True},
        name="orderengine",
    )


def make_redis(settings: Settings) -> aioredis.Redis:
    _, redis_url = require_urls(settings)
    return aioredis.Redis.from_url(redis_url, decode_responses=True)


def make_dexes(settings: Settings) -> dict[str, Dex]:
    """The venues to quote; the mock ones unless USE_REAL_DEVNET (not built yet)."""
    rng = random.Random(settings.mock_seed)
    failures = mock_dex.FailurePlan(
        rate=settings.mock_fail_rate, first_n=settings.mock_fail_first_n, rng=random.Random(rng.random())
    )
    sync_redis = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    common: dict[str, object] = {
        "quote_ms": (settings.mock_quote_min_ms, settings.mock_quote_max_ms),
        "swap_ms": (settings.mock_swap_min_ms, settings.mock_swap_max_ms),
        "latency_scale": Decimal(settings.mock_latency_scale),
        "failures": failures,
        "ledger": mock_dex.RedisSwapLedger(sync_redis, settings.redis_prefix) if sync_redis else None,
        "market": RedisMarket(sync_redis, settings.redis_prefix) if sync_redis else None,
        "explorer_tx_url": settings.mock_explorer_tx_url or None,
    }
    return {
        "raydium": mock_dex.raydium(rng=random.Random(rng.random()), **common),
        "meteora": mock_dex.meteora(rng=random.Random(rng.random()), **common),
    }

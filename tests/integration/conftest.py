from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import PostgresEventStore

pytestmark = pytest.mark.integration


Pool = AsyncConnectionPool[AsyncConnection[Any]]


async def _open_pool(url: str, max_size: int) -> Pool:
    p: Pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False, kwargs={"autocommit": True})
    await p.open(wait=True)
    return p


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    p = await _open_pool(database_url, max_size=8)
    yield p
    await p.close()


@pytest.fixture
async def own_pool(own_database_url: str) -> AsyncIterator[Pool]:
    """A pool on a database of this test's own: positions, lag and counts are exact there."""
    p = await _open_pool(own_database_url, max_size=6)
    yield p
    await p.close()


@pytest.fixture
def store(pool: Pool) -> PostgresEventStore:
    return PostgresEventStore(pool.connection)


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()

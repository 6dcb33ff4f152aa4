from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import PostgresEventStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[AsyncConnection[Any]]]:
    p: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        database_url, min_size=1, max_size=8, open=False, kwargs={"autocommit": True}
    )
    await p.open(wait=True)
    yield p
    await p.close()


@pytest.fixture
async def own_pool(own_database_url: str) -> AsyncIterator[AsyncConnectionPool[AsyncConnection[Any]]]:
    """A pool on a database of this test's own: positions, lag and counts are exact there."""
    p: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        own_database_url, min_size=1, max_size=6, open=False, kwargs={"autocommit": True}
    )
    await p.open(wait=True)
    yield p
    await p.close()


@pytest.fixture
def store(pool: AsyncConnectionPool[AsyncConnection[Any]]) -> PostgresEventStore:
    return PostgresEventStore(pool.connection)


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()

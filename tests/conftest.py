"""Real servers for the tests: the machine's own when DATABASE_URL and REDIS_URL
are set, otherwise embedded Postgres and Valkey under `.data/test-servers`.

Each session works in a database and a Redis key prefix of its own and drops
them afterwards, so runs can share one server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        yield database_url, redis_url
        return
    from adapters.embedded_servers import EmbeddedServers

    (REPO / ".data").mkdir(exist_ok=True)
    servers = EmbeddedServers(REPO / ".data" / "test-servers")
    urls = servers.start()
    try:
        yield urls
    finally:
        servers.stop()


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new migrated database on the server of `admin_url`, dropped afterwards."""
    from db.migrate import apply_migrations

    name = f"oe_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(admin_url, dbname=name)
    try:
        apply_migrations(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(server_urls: tuple[str, str]) -> Iterator[str]:
    """A fresh, migrated database for this session, dropped at the end."""
    with fresh_database(server_urls[0]) as url:
        yield url


@pytest.fixture
def own_database_url(server_urls: tuple[str, str]) -> Iterator[str]:
    """A database for one test alone: for engines whose scheduler jobs (re-driving,
    expiry) would otherwise act on orders other tests left in the shared database."""
    with fresh_database(server_urls[0]) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(server_urls: tuple[str, str]) -> str:
    return server_urls[1]


def delete_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test's own, deleted afterwards."""
    prefix = f"oetest-{uuid.uuid4().hex[:10]}"
    yield prefix
    delete_prefix(redis_url, prefix)

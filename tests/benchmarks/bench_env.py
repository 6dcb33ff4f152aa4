"""Servers and a scratch database for benchmark scripts (same rules as the tests:
the machine's servers when DATABASE_URL/REDIS_URL are set, else embedded ones)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import make_conninfo

from tests.conftest import REPO, delete_prefix


@contextmanager
def scratch_servers() -> Iterator[tuple[str, str]]:
    """(database_url, redis_url) of a fresh migrated database, dropped afterwards."""
    from db.migrate import apply_migrations

    admin_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    servers = None
    if not (admin_url and redis_url):
        from adapters.embedded_servers import EmbeddedServers

        (REPO / ".data").mkdir(exist_ok=True)
        servers = EmbeddedServers(REPO / ".data" / "bench-servers")
        admin_url, redis_url = servers.start()
    name = f"oe_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_conninfo(admin_url, dbname=name)
        apply_migrations(url)
        yield url, redis_url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if servers is not None:
            servers.stop()


__all__ = ["delete_prefix", "scratch_servers"]

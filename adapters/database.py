"""The Postgres side of a process: one pool for short statements, and dedicated
connections for what must keep a session of its own (LISTEN, a session advisory lock,
an exported snapshot, a rebuild's COPY).

Built by the composition root (adapters/bootstrap.py) and opened on the event loop that
uses it; nothing else in the code connects to Postgres by URL (a rebuild's scan
processes receive the URL, since a connection cannot cross a process).
"""

from __future__ import annotations

import os
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[Any]]


class Database:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, name: str = "orderengine") -> None:
        self.url = url
        # What pg_stat_activity shows for each of this process's sessions: its role and pid.
        self.application_name = f"{name} {os.getpid()}"
        self.pool: Pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "application_name": self.application_name},
            name=name,
        )

    async def open(self) -> None:
        await self.pool.open(wait=True)

    async def close(self) -> None:
        await self.pool.close()

    async def connect(self, *, autocommit: bool = True) -> AsyncConnection[Any]:
        """A connection of its own, outside the pool; the caller closes it (`async with`)."""
        return await AsyncConnection.connect(
            self.url, autocommit=autocommit, application_name=self.application_name
        )

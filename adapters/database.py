"""The Postgres side of a process: one pool for short statements, and dedicated
connections for what must keep a session of its own (LISTEN, a session advisory lock,
an exported snapshot, a rebuild's COPY).

Built by the composition root (adapters/bootstrap.py) and opened on the event loop that
uses it; nothing else in the code connects to Postgres by URL (a rebuild's scan
processes receive the URL, since a connection cannot cross a process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger("orderengine.database")

# While Postgres is known to be down, a request waits this long for a connection before it
# is told (503 at the API; a retry in a worker) instead of the pool's 30 s.
DOWN_WAIT_S = 0.5
# A connection idle longer than this is checked (one empty round trip) before it is handed
# out: after a Postgres restart every idle connection is dead, and a busy pool, whose
# connections come back within milliseconds, pays nothing for the check.
IDLE_CHECK_S = 1.0
# A pool gives up reconnecting after this long and starts afresh on the next request: its
# backoff (1, 2, 4 … s) would otherwise keep a database that is back unused for up to a
# minute after a long outage.
RECONNECT_TIMEOUT_S = 2.0


def is_connection_failure(exc: BaseException) -> bool:
    """Postgres itself is unreachable or went away (not a statement that failed)."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    # No SQLSTATE: the connection broke (refused, reset, closed). 08: connection exception;
    # 57P01-57P03: the server shutting down, crashed, or not accepting connections yet.
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


class ResilientPool(AsyncConnectionPool[AsyncConnection[Any]]):
    """A pool that copes with Postgres going away: a connection that sat idle is checked
    before it is handed out (after a restart every idle one is dead); after a lost
    connection all idle ones are checked at once; and while Postgres is down a request
    waits DOWN_WAIT_S for a connection, not 30 s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, check=self._check_if_idle, **kwargs)
        self.suspect_down = False
        self._checking: asyncio.Task[None] | None = None
        self._last_used: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()

    async def _check_if_idle(self, conn: AsyncConnection[Any]) -> None:
        """The pool's checkout check: a connection that sat idle may have been closed by the
        server meanwhile; one that raises here is discarded and another one handed out."""
        last = self._last_used.get(conn)
        if last is not None and time.monotonic() - last > IDLE_CHECK_S:
            await AsyncConnectionPool.check_connection(conn)

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[AsyncConnection[Any]]:
        if timeout is None and self.suspect_down:
            timeout = DOWN_WAIT_S
        try:
            async with super().connection(timeout=timeout) as conn:
                try:
                    yield conn
                finally:
                    self._last_used[conn] = time.monotonic()
        except Exception as exc:
            if is_connection_failure(exc):
                self._lost()
            raise
        else:
            self.suspect_down = False

    def _lost(self) -> None:
        if not self.suspect_down:
            log.warning("lost the connection to Postgres; checking the pool's connections")
        self.suspect_down = True
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self._check_quietly())

    async def _check_quietly(self) -> None:
        try:
            await self.check()  # discards the broken idle connections, opens new ones
        except Exception:  # Postgres still down: the next request tries again
            log.debug("pool check failed", exc_info=True)


Pool = AsyncConnectionPool[AsyncConnection[Any]]


class Database:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, name: str = "orderengine") -> None:
        self.url = url
        # What pg_stat_activity shows for each of this process's sessions: its role and pid.
        self.application_name = f"{name} {os.getpid()}"
        self.pool: Pool = ResilientPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "application_name": self.application_name},
            name=name,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
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

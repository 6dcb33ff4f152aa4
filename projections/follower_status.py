"""Where each log follower stands: checkpoint, head, lag, whether a rebuild of it runs, and
which version of its code built its tables. Index lookups only: cheap enough for every
readiness probe (api/health_routes.py) and `orderengine projections status`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.database import Database as DatabaseAdapter
from projections.registry import FOLLOWERS, PROJECTIONS

Pool = AsyncConnectionPool[AsyncConnection[Any]]
Database = DatabaseAdapter | Pool


@asynccontextmanager
async def one_connection(db: Database) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection of the pool, or one of its own for a database (a command, a rebuild)."""
    if isinstance(db, DatabaseAdapter):
        async with await db.connect() as conn:
            yield conn
    else:
        async with db.connection() as conn:
            yield conn


_STATUS = """
SELECT f.name, coalesce(c.position, 0), head.position,
       greatest(head.position - coalesce(c.position, 0), 0),
       greatest(coalesce(extract(epoch FROM clock_timestamp() - (
           SELECT e.recorded_at FROM events e WHERE e.position > coalesce(c.position, 0)
           ORDER BY e.position LIMIT 1)), 0), 0)::float8,
       extract(epoch FROM clock_timestamp() - c.updated_at)::float8,
       EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.classid::bigint = f.lock_key >> 32 AND l.objid::bigint = f.lock_key & 4294967295),
       c.version
FROM unnest(%s::text[], %s::bigint[]) AS f(name, lock_key)
LEFT JOIN projection_checkpoints c ON c.name = f.name
CROSS JOIN (SELECT coalesce(max(position), 0) AS position FROM events) AS head
"""


class FollowerStatus(msgspec.Struct, kw_only=True, rename="camel"):
    name: str
    position: int  # its checkpoint
    head: int  # the log's last position
    lag_events: int  # events after its checkpoint
    lag_seconds: float  # age of the oldest of them (0 when caught up)
    idle_seconds: float | None  # since its checkpoint last moved (None: it never ran)
    rebuilding: bool  # a rebuild of it is running now
    rebuildable: bool
    version: int | None = None  # of the code that built its tables (None: not started)
    code_version: int | None = None  # of this code (None: not a rebuildable projection)

    @property
    def outdated(self) -> bool:
        """Its tables were built by older code than this: a rebuild is due."""
        return self.version is not None and self.code_version is not None and self.version < self.code_version

    def stalled(self, after_s: float) -> bool:
        """Events have waited over `after_s` and it has not advanced for as long: stuck (a
        dead scheduler, or an event it cannot apply), not merely catching up or idle."""
        idle = self.idle_seconds if self.idle_seconds is not None else float("inf")
        return self.lag_events > 0 and self.lag_seconds > after_s and idle > after_s


async def status(db: Database, names: Sequence[str] = FOLLOWERS) -> list[FollowerStatus]:
    """Where each log follower stands."""
    keys = [PROJECTIONS[n].lock_key if n in PROJECTIONS else 0 for n in names]
    async with one_connection(db) as conn:
        cur = await conn.execute(_STATUS, (list(names), keys))
        rows = await cur.fetchall()
    return [
        FollowerStatus(
            name=name,
            position=int(position),
            head=int(head),
            lag_events=int(lag_events),
            lag_seconds=float(lag_seconds),
            idle_seconds=None if idle is None else float(idle),
            rebuilding=bool(rebuilding),
            rebuildable=name in PROJECTIONS,
            version=version,
            code_version=PROJECTIONS[name].version if name in PROJECTIONS else None,
        )
        for name, position, head, lag_events, lag_seconds, idle, rebuilding, version in rows
    ]

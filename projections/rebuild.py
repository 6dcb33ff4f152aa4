"""Rebuild projections from the log without downtime, and report how far each one is.

`rebuild(db, name)` (all rebuildable projections when `name` is None, in one pass):
`rebuild_outdated(db)` rebuilds those whose tables older code built (the version each
projection's code declares against the one its checkpoint records, migration 0010);
the scheduler runs it as it starts following the log.

1. **Shadow tables** `{table}__rebuild`, shaped like the live ones, without indexes
   (projections/shadow_tables.py).
2. **Bulk build**: one scan of the log from position 0 (projections/log_scan.py: chunks
   aggregated by Postgres, decoded by msgspec in one call), folded by each
   projection's builder (the domain's own `evolve`), the rows streamed into the
   shadows with COPY. The live tables keep serving meanwhile.
3. The live tables' **indexes** built on the loaded shadows, then ANALYZE.
4. **Catch-up**, unlocked: events the live follower applied meanwhile, applied to the
   shadows through each projection's incremental path.
5. **Swap**, one transaction: lock the projection's checkpoint row (`FOR UPDATE`, which
   the live LogFollower also takes for each batch, so the two serialise), apply what
   the follower committed since step 4, drop the live tables and rename the shadows,
   their indexes and constraints to the live names, write the checkpoint. Readers
   wait only for the drop and the renames.

**Where the shadow stops.** A projection whose follower runs (its checkpoint within
`LIVE_WITHIN` events of the head when the rebuild starts) is rebuilt exactly to that
checkpoint, then kept level with it, and swapped in at the checkpoint the follower
holds under the lock. So the follower carries on where it was, on the new table,
and applies (and, for the orders projection, counts in the lifecycle metrics)
every later event itself: a rebuild never counts, and nothing is counted twice or
skipped. A projection without a checkpoint (new) or far behind (its follower
stopped) is rebuilt to the head instead and its checkpoint moves there: the
rebuild is then the fast way to catch it up, and the events it jumps over are
not counted in the lifecycle metrics.

The scan runs in worker processes for a large log (projections/bulk_load.py), each
folding the orders whose id hashes to its share, with garbage collection paused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import read_all
from domain.ports import RecordedEvent
from projections import (
    bulk_load,
    orders_bulk,
    orders_projection,
    redis_relay,
    shadow_tables,
    stats_projection,
)
from projections.bulk_load import Builder
from projections.log_follower import write_checkpoint
from projections.rebuild_errors import RebuildError, ShadowError, UnfoldableLog

log = logging.getLogger("orderengine.rebuild")

Pool = AsyncConnectionPool[AsyncConnection[Any]]
Database = str | Pool
Progress = Callable[[int, int], None]

CATCH_UP_BATCH = 5_000
# Unlocked catch-up rounds stop once this little is left; the locked swap applies the rest.
SWAP_WHEN_LEFT = 2_000
MAX_CATCH_UP_ROUNDS = 20
# The swap waits at most this long for a lock (a reader's long transaction on the live
# table), then rolls back and tries again; readers queued behind it wait no longer.
SWAP_LOCK_TIMEOUT_MS = 2_000
SWAP_ATTEMPTS = 5
# A follower this close to the head is running: the rebuild stops at its checkpoint.
LIVE_WITHIN = 10_000
# Index builds at once after the load (this machine has 2 cores; more only queue).
INDEX_BUILDERS = 2


CatchUp = Callable[[AsyncConnection[Any], dict[str, str], list[RecordedEvent]], Any]


@dataclass(frozen=True)
class Projection:
    name: str
    tables: tuple[str, ...]  # live tables, swapped together
    builder: Callable[[], Builder]
    catch_up: CatchUp  # applies events to the shadow tables (live name -> shadow name)
    lock_key: int  # advisory lock: one rebuild of this projection at a time
    version: int  # of its code; the swap records it with the checkpoint


PROJECTIONS: dict[str, Projection] = {
    p.name: p
    for p in (
        Projection(
            orders_projection.NAME,
            (orders_bulk.TABLE,),
            orders_bulk.OrdersBuilder,
            orders_bulk.catch_up,
            0x6F65_7262_01,
            orders_projection.VERSION,
        ),
        Projection(
            stats_projection.NAME,
            tuple(stats_projection.TABLES),
            stats_projection.StatsBuilder,
            stats_projection.catch_up,
            0x6F65_7262_02,
            stats_projection.VERSION,
        ),
    )
}
__all__ = ["RebuildError", "ShadowError", "UnfoldableLog", "rebuild", "status"]

# Every log follower `status` reports on; the relay has no table to rebuild.
FOLLOWERS = (*PROJECTIONS, redis_relay.NAME)


class UnknownProjection(RebuildError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown projection {name!r}: choose from {', '.join(PROJECTIONS)}")


class RebuildRunning(RebuildError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a rebuild of {name} is already running")


class Swapped(msgspec.Struct, kw_only=True, rename="camel"):
    """What one projection's rebuild did."""

    name: str
    position: int  # its checkpoint after the swap
    caught_up: int  # events applied to the shadow after the bulk scan


class RebuildReport(msgspec.Struct, kw_only=True, rename="camel"):
    projections: list[Swapped]
    events: int  # events in the bulk scan
    seconds: float
    workers: int = 1  # scan processes
    phases: dict[str, float] = {}  # seconds per phase: scan, indexes, catchUp, swap


# -- connections ------------------------------------------------------------------------------


def _url(db: Database) -> str:
    # A pool's connections serve the application: the rebuild opens its own (several, for
    # a long time), with the pool's connection string.
    return db if isinstance(db, str) else str(db.conninfo)


async def _connect(url: str) -> AsyncConnection[Any]:
    return await AsyncConnection.connect(url, autocommit=True)


@asynccontextmanager
async def _one_connection(db: Database) -> AsyncIterator[AsyncConnection[Any]]:
    if isinstance(db, str):
        async with await _connect(db) as conn:
            yield conn
    else:
        async with db.connection() as conn:
            yield conn


def choose(name: str | Sequence[str] | None) -> list[Projection]:
    """The projections `name` means (a name, several, or None: all); UnknownProjection otherwise."""
    if name is None:
        return list(PROJECTIONS.values())
    names = [name] if isinstance(name, str) else list(name)
    for n in names:
        if n not in PROJECTIONS:
            raise UnknownProjection(n)
    return [PROJECTIONS[n] for n in names]


# -- rebuild -----------------------------------------------------------------------------------


@dataclass
class _Job:
    projection: Projection
    builder: Builder
    shadows: list[shadow_tables.Shadow] = field(default_factory=list)
    upto: int = 0  # where its bulk build stops

    @property
    def names(self) -> dict[str, str]:
        return {s.live: s.shadow for s in self.shadows}

    @property
    def target(self) -> bulk_load.Target:
        return bulk_load.Target(self.projection.name, self.projection.builder, self.names, self.upto)


async def rebuild(
    db: Database,
    name: str | Sequence[str] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> RebuildReport:
    """Rebuild `name` (a list of names, or None: every projection; one scan for all) into
    shadows and swap them in. `progress(events done, total)` is called as the scan goes;
    `workers`: processes for the scan (default: projections/bulk_load.py decides by the
    log's size)."""
    chosen = choose(name)
    url = _url(db)
    started = time.perf_counter()
    phases: dict[str, float] = {}
    async with AsyncExitStack() as stack:
        control = await stack.enter_async_context(await _connect(url))
        for p in chosen:
            cur = await control.execute("SELECT pg_try_advisory_lock(%s)", (p.lock_key,))
            row = await cur.fetchone()
            if not (row and row[0]):
                raise RebuildRunning(p.name)  # the session's locks go with the connection
        jobs = [_Job(p, p.builder()) for p in chosen]
        try:
            for job in jobs:
                for table in job.projection.tables:
                    job.shadows.append(await shadow_tables.create(control, table))
            head = await _head(control)
            for job in jobs:
                job.upto = await _target(control, job.projection.name, head)
            upto = max(job.upto for job in jobs)
            targets = [job.target for job in jobs]
            total = await _count(control, upto)
            workers = bulk_load.workers_for(total, workers)
            events = await bulk_load.load(url, targets, upto, total, progress, workers)
            phases["scan"] = time.perf_counter() - started
            mark = time.perf_counter()
            for job in jobs:
                await job.builder.after_load(control, job.names)
            await _in_parallel(url, [i.ddl for job in jobs for s in job.shadows for i in s.indexes])
            for job in jobs:
                for shadow in job.shadows:
                    await shadow_tables.finish(control, shadow)
            phases["indexes"] = time.perf_counter() - mark
            swapped = []
            for job in jobs:
                mark = time.perf_counter()
                position, applied = await _catch_up_unlocked(control, job, job.upto)
                phases["catchUp"] = phases.get("catchUp", 0.0) + time.perf_counter() - mark
                mark = time.perf_counter()
                result = await _swap(control, job, position)
                phases["swap"] = phases.get("swap", 0.0) + time.perf_counter() - mark
                swapped.append(msgspec.structs.replace(result, caught_up=result.caught_up + applied))
        except BaseException:
            for job in jobs:
                for shadow in job.shadows:
                    try:
                        await shadow_tables.drop(control, shadow)
                    except psycopg.Error:
                        pass  # dropped at the next rebuild's start
            raise
    return RebuildReport(
        projections=swapped,
        events=events,
        seconds=time.perf_counter() - started,
        workers=workers or 1,
        phases=phases,
    )


async def _head(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _count(conn: AsyncConnection[Any], upto: int) -> int:
    cur = await conn.execute("SELECT count(*) FROM events WHERE position <= %s", (upto,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _target(conn: AsyncConnection[Any], name: str, head: int) -> int:
    """Where the bulk build of `name` stops: its live checkpoint if its follower runs, else the head."""
    cur = await conn.execute("SELECT position FROM projection_checkpoints WHERE name = %s", (name,))
    row = await cur.fetchone()
    if row is not None and head - int(row[0]) <= LIVE_WITHIN:
        return int(row[0])
    return head


async def _in_parallel(url: str, statements: list[sql.Composed]) -> None:
    """Run the index builds on INDEX_BUILDERS connections at once (Python waits meanwhile,
    so Postgres has every core)."""
    queue = list(reversed(statements))

    async def worker() -> None:
        async with await _connect(url) as conn:
            await conn.execute("SET maintenance_work_mem = '256MB'")
            while queue:
                await conn.execute(queue.pop())

    await asyncio.gather(*(worker() for _ in range(min(INDEX_BUILDERS, len(queue)))))


async def _checkpoint(conn: AsyncConnection[Any], name: str, *, lock: bool) -> int:
    if lock:
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, position) VALUES (%s, 0)"
            " ON CONFLICT (name) DO NOTHING",
            (name,),
        )
    cur = await conn.execute(
        "SELECT position FROM projection_checkpoints WHERE name = %s" + (" FOR UPDATE" if lock else ""),
        (name,),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _apply(conn: AsyncConnection[Any], job: _Job, after: int, upto: int) -> int:
    """Apply events (after, upto] to the shadows in batches; returns how many."""
    applied = 0
    while after < upto:
        events = [e for e in await read_all(conn, after, CATCH_UP_BATCH) if e.position <= upto]
        if not events:
            break
        await job.projection.catch_up(conn, job.names, events)
        applied += len(events)
        after = events[-1].position
    return applied


async def _catch_up_unlocked(conn: AsyncConnection[Any], job: _Job, position: int) -> tuple[int, int]:
    """Follow the live checkpoint without blocking it, until little is left for the swap."""
    applied = 0
    for _ in range(MAX_CATCH_UP_ROUNDS):
        target = await _checkpoint(conn, job.projection.name, lock=False)
        if target - position <= SWAP_WHEN_LEFT:
            break
        async with conn.transaction():
            applied += await _apply(conn, job, position, target)
        position = target
    return position, applied


async def _swap(conn: AsyncConnection[Any], job: _Job, position: int) -> Swapped:
    name = job.projection.name
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = {SWAP_LOCK_TIMEOUT_MS}")
                live = await _checkpoint(conn, name, lock=True)
                applied = await _apply(conn, job, position, live)
                for shadow in job.shadows:
                    await shadow_tables.swap(conn, shadow)
                final = max(live, position)
                await write_checkpoint(conn, name, final, job.projection.version)
            log.info("projection rebuilt and swapped in", extra={"projection": name, "position": final})
            return Swapped(name=name, position=final, caught_up=applied)
        except psycopg.errors.LockNotAvailable:
            log.warning("swap of %s waited too long for a lock (attempt %d); retrying", name, attempt)
    raise RebuildError(f"could not swap {name} in: its tables stayed locked by other sessions")


# -- status -----------------------------------------------------------------------------------

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
    """Where each log follower stands: index lookups only, cheap enough for every probe."""
    keys = [PROJECTIONS[n].lock_key if n in PROJECTIONS else 0 for n in names]
    async with _one_connection(db) as conn:
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


async def rebuild_outdated(db: Database, workers: int | None = None) -> RebuildReport | None:
    """Rebuild (in one pass) the projections whose tables older code built; None if none is.
    The scheduler calls it when it starts following the log, so deploying a new version
    of a projection rebuilds it while the old tables serve."""
    due = [f.name for f in await status(db, list(PROJECTIONS)) if f.outdated and not f.rebuilding]
    if not due:
        return None
    log.info("rebuilding projections built by older code", extra={"projections": due})
    return await rebuild(db, due, workers=workers)

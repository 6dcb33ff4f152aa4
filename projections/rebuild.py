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
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg
from psycopg import AsyncConnection, sql

from adapters.database import Database
from adapters.postgres_event_store import read_all
from projections import bulk_load, shadow_tables
from projections.bulk_load import Builder
from projections.follower_status import status
from projections.log_follower import write_checkpoint
from projections.rebuild_errors import RebuildError
from projections.registry import PROJECTIONS, Projection, choose

log = logging.getLogger("orderengine.rebuild")

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


# A pool's connections serve the application: the rebuild opens its own (several, for a
# long time), and its scan processes connect with the database's URL.


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
    started = time.perf_counter()
    phases: dict[str, float] = {}
    async with AsyncExitStack() as stack:
        control = await stack.enter_async_context(await db.connect())
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
            events = await bulk_load.load(db.url, targets, upto, total, progress, workers)
            phases["scan"] = time.perf_counter() - started
            mark = time.perf_counter()
            for job in jobs:
                await job.builder.after_load(control, job.names)
            await _in_parallel(db, [i.ddl for job in jobs for s in job.shadows for i in s.indexes])
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


async def _in_parallel(db: Database, statements: list[sql.Composed]) -> None:
    """Run the index builds on INDEX_BUILDERS connections at once (Python waits meanwhile,
    so Postgres has every core)."""
    queue = list(reversed(statements))

    async def worker() -> None:
        async with await db.connect() as conn:
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


# -- projections older code built --------------------------------------------------------------


async def rebuild_outdated(db: Database, workers: int | None = None) -> RebuildReport | None:
    """Rebuild (in one pass) the projections whose tables older code built; None if none is.
    The scheduler calls it when it starts following the log, so deploying a new version
    of a projection rebuilds it while the old tables serve."""
    due = [f.name for f in await status(db, list(PROJECTIONS)) if f.outdated and not f.rebuilding]
    if not due:
        return None
    log.info("rebuilding projections built by older code", extra={"projections": due})
    return await rebuild(db, due, workers=workers)

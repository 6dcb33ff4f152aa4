"""The bulk build of a rebuild (projections/rebuild.py): scan the log, fold, COPY into the shadows.

Folding is Python and keeps one core busy; Postgres (building the chunks, taking the
COPY) needs less than another. So a large log is split between worker processes:
each takes the orders whose stream id hashes to its share (Postgres filters on
`hashtext(stream_id)`, so every event of an order goes to the same worker, which
folds whole orders), scans its share in position order, folds it with the
projections' builders and COPYs the rows into the shadows on connections of its
own. A small log is loaded in this process: starting a worker costs ~0.3 s.

Workers are separate interpreters (`python -m projections.bulk_load`, not forks: the
parent holds connections and an event loop, and a spawned multiprocessing child
would re-import the caller's main module) and report their progress, their end or
their error on stdout; if one fails, the others are killed and the error is
raised here. Each worker's COPYs commit when it ends, so the shadows are complete
once every worker has ended.

Measured on 2 cores with 1,000,000 events (tests/benchmarks/rebuild.py), the whole
rebuild of the orders projection: ~122,000 events/s with one process, 119,000–130,000
with two (Postgres needs much of the second core); stats ~179,000 and 186,000–208,000.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import AsyncConnection, sql

from projections import log_scan
from projections.rebuild_errors import RebuildError, UnfoldableLog

# Below this many events the log is loaded in this process.
PARALLEL_FROM = 100_000
# Worker processes for a large log: one per core, up to 4 (Postgres needs cores too).
WORKERS = max(1, min(os.cpu_count() or 1, 4))


class Builder(Protocol):
    """Folds the log chunk by chunk into rows for the shadow tables."""

    @property
    def columns(self) -> Mapping[str, Sequence[str]]:
        """The COPY columns of each table it writes."""
        ...

    def feed(self, rows: list[log_scan.LogRow]) -> dict[str, list[tuple[Any, ...]]]: ...

    def finish(self) -> dict[str, list[tuple[Any, ...]]]: ...

    async def after_load(self, conn: AsyncConnection[Any], shadow: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class Target:
    """One projection's part of the load; sent to workers, so plain data and a class."""

    name: str
    builder: Callable[[], Builder]  # a class, pickled by its import path
    shadows: dict[str, str]  # live table -> shadow table
    upto: int  # feed its builder events up to this position


async def load_part(
    url: str, targets: Sequence[Target], upto: int, part: int, parts: int, report: Callable[[int], None]
) -> int:
    """Scan share `part` of `parts` of the log up to `upto`, fold it with each target's
    builder, COPY the rows into its shadows; `report(n)` after each chunk of n events."""
    builders = [(target, target.builder()) for target in targets]
    async with AsyncExitStack() as stack:
        copies: dict[tuple[str, str], Any] = {}
        for target, builder in builders:
            for table, columns in builder.columns.items():
                conn = await stack.enter_async_context(await AsyncConnection.connect(url, autocommit=True))
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(target.shadows[table]), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                copies[target.name, table] = await stack.enter_async_context(conn.cursor().copy(statement))

        async def write(target: Target, rows: dict[str, list[tuple[Any, ...]]]) -> None:
            for table, table_rows in rows.items():
                copy = copies[target.name, table]
                for row in table_rows:
                    await copy.write_row(row)

        scanner = await stack.enter_async_context(await AsyncConnection.connect(url, autocommit=True))
        await log_scan.prepare(scanner)
        done = 0
        cuts = sorted({target.upto for target in targets})
        async for last, rows in log_scan.scan(scanner, 0, upto, cuts=cuts, part=(part, parts)):
            for target, builder in builders:
                if last <= target.upto:
                    await write(target, builder.feed(rows))
            done += len(rows)
            report(len(rows))
        for target, builder in builders:
            await write(target, builder.finish())
    return done  # leaving the stack ends each COPY (committing it) and closes the connections


def workers_for(total: int, asked: int | None) -> int:
    """The scan processes for a log of `total` events: as asked, else WORKERS for a large
    log and 1 for a small one (starting processes costs more than a small scan)."""
    return asked if asked is not None else (WORKERS if total >= PARALLEL_FROM else 1)


async def load(
    url: str,
    targets: Sequence[Target],
    upto: int,
    total: int,
    progress: Callable[[int, int], None] | None,
    workers: int | None = None,
) -> int:
    """Load every target's shadows from the log up to `upto` (`total` events); returns the
    events scanned. `workers`: see `workers_for`."""
    workers = workers_for(total, workers)
    done = 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if workers <= 1:
        # Folding allocates millions of small objects and creates no cycles: the collector's
        # passes over the open orders would cost more than the fold.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return await load_part(url, targets, upto, 0, 1, report)
        finally:
            if collecting:
                gc.enable()
    await _in_workers(url, targets, upto, workers, report)
    return done


async def _in_workers(
    url: str, targets: Sequence[Target], upto: int, workers: int, report: Callable[[int], None]
) -> None:
    """Run `python -m projections.bulk_load` once per share and follow their reports."""
    job = [url, [[t.name, _path_of(t.builder), t.shadows, t.upto] for t in targets], upto, workers]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "projections.bulk_load",
            json.dumps([*job, part]),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        for part in range(workers)
    ]
    try:
        await asyncio.gather(*(_follow(process, report) for process in processes))
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def _follow(process: asyncio.subprocess.Process, report: Callable[[int], None]) -> None:
    """Relay one worker's progress; raise what it failed with."""
    assert process.stdout is not None and process.stderr is not None
    outcome = None
    async for line in process.stdout:
        kind, _, value = line.decode().rstrip("\n").partition(" ")
        if kind == "progress":
            report(int(value))
        else:
            outcome = (kind, value)
    errors = (await process.stderr.read()).decode(errors="replace").strip()
    if await process.wait() == 0 and outcome == ("done", ""):
        return
    if outcome is not None and outcome[0] == UnfoldableLog.__name__:
        raise UnfoldableLog(outcome[1])
    detail = f"{outcome[0]}: {outcome[1]}" if outcome else (errors.splitlines() or ["no output"])[-1]
    raise RebuildError(f"a rebuild worker failed (exit code {process.returncode}): {detail}")


def _path_of(factory: Callable[[], Builder]) -> str:
    return f"{factory.__module__}:{factory.__qualname__}"


def _factory(path: str) -> Callable[[], Builder]:
    module, _, name = path.partition(":")
    factory: Callable[[], Builder] = getattr(importlib.import_module(module), name)
    return factory


def _work(argument: str) -> int:
    """A worker process: load its share, reporting on stdout (`progress N`, then `done`, or
    the error's type and message on one line)."""
    url, targets, upto, parts, part = json.loads(argument)
    shares = [Target(name, _factory(path), shadows, last) for name, path, shadows, last in targets]
    gc.disable()  # see `load`; the process ends when its share is loaded

    def report(n: int) -> None:
        print(f"progress {n}", flush=True)

    try:
        asyncio.run(load_part(url, shares, upto, part, parts, report))
    except Exception as exc:
        message = " ".join(str(exc).split())  # one line
        print(f"{type(exc).__name__} {message}", flush=True)
        return 1
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_work(sys.argv[1]))

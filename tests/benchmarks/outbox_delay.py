"""Delay from an append's commit to its entry on the all-orders Redis stream, through
the real outbox relay (`LogFollower` + `RedisRelay`, woken by its `LogWatcher`).

    .venv/bin/python -m tests.benchmarks.outbox_delay --events 2000 --runs 3
    .venv/bin/python -m tests.benchmarks.outbox_delay --events 2000 --runs 3 --burst

One process, three parts, as in a deployment:
- the relay, wired as `workers/scheduler.py` wires it, on an event loop of its own in
  a thread (the scheduler process's loop; pass `--shared-loop` to run it on the main
  loop instead);
- a writer appending one event per append (`PostgresEventStore.append`, a new
  order stream each time), every `--interval-ms` (so the relay is mostly woken by
  NOTIFY from idle, the realistic case) or as fast as it can with `--burst`; it
  notes the clock right after each append's commit returns;
- a reader in `XREAD BLOCK` on `{prefix}:orders`, noting the clock as each reply
  arrives and matching entries to appends by their `position` field.

The delay measured is therefore commit → XADD → XREAD delivery to the reader: an
upper bound on commit → XADD. The rate reached is printed too: in one process on
2 cores an append takes ~3 ms while the relay runs (~1.4 ms without it), so
intervals under ~4 ms are not held and become a burst.

A max near 1,000 ms is a missed wake-up: `LogFollower.run` clears its wake-up
*after* a step, so a NOTIFY that arrives during the step is lost. Mid-run the
next append wakes the relay again; the last event of a run waits for the 1 s poll.

Per run it prints count, median, p90, p99 and max in ms, then the median of the
run medians and of the run p99s, and one summary line for a note. Servers: the
machine's when DATABASE_URL/REDIS_URL are set, else embedded ones
(`bench_env.scratch_servers`); the scratch database and the Redis prefix are
removed afterwards. Only talks to 127.0.0.1; every loop is bounded by the
arguments or a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from psycopg import AsyncConnection

from adapters.bootstrap import bootstrap
from adapters.postgres_event_store import PostgresEventStore
from adapters.redis_layout import RedisLayout
from adapters.settings import Settings
from domain.ports import EventMetadata
from projections import redis_relay
from projections.log_follower import LogWatcher
from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.factories import new_order_id, pending_event
from workers.scheduler import log_followers

MAX_EVENTS, MAX_RUNS = 20_000, 10
WARM_UP = 50  # events appended and awaited before the first run, not counted
DRAIN_TIMEOUT_S = 30.0  # after the last append, every entry must arrive within this
BLOCK_MS = 1000
SLOW_MS = 100.0  # counted separately: the relay slept until its 1 s poll (a missed wake-up)

XReadReply = list[tuple[str, list[tuple[str, dict[str, str]]]]] | None


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (q in 0..1)."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class RunStats:
    count: int
    median: float
    p90: float
    p99: float
    max: float
    slow: int
    appends_per_s: float

    @classmethod
    def of(cls, delays_ms: Sequence[float], appends_per_s: float) -> RunStats:
        d = sorted(delays_ms)
        return cls(
            len(d),
            statistics.median(d),
            percentile(d, 0.9),
            percentile(d, 0.99),
            d[-1],
            sum(x > SLOW_MS for x in d),
            appends_per_s,
        )

    def line(self) -> str:
        return (
            f"{self.count} events, median {self.median:.2f} ms, p90 {self.p90:.2f} ms, "
            f"p99 {self.p99:.2f} ms, max {self.max:.2f} ms ({self.slow} over {SLOW_MS:g} ms); "
            f"{self.appends_per_s:.0f} appends/s"
        )


class RelayThread:
    """The relay and its NOTIFY listener on their own loop, as the scheduler runs them."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings, self.database_url = settings, database_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="relay", daemon=True)
        self.main: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        future.result(timeout=30)

    async def _start(self) -> None:
        self.main = asyncio.get_running_loop().create_task(run_relay(self.settings, self.database_url))

    def stop(self) -> None:
        async def cancel() -> None:
            logging.getLogger("psycopg").setLevel(logging.ERROR)  # cancelled LISTEN: expected
            if self.main is not None:
                self.main.cancel()
                await asyncio.gather(self.main, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


async def run_relay(settings: Settings, database_url: str) -> None:
    """`workers/scheduler.py`'s relay wiring, without the orders projection, the jobs and
    the relay lock (`run_exclusively`: there is one relay here)."""
    async with bootstrap(settings, pool_min=2, pool_max=4) as engine:
        watcher = LogWatcher(engine.database.pool, listens=True)
        follower = next(f for f in log_followers(engine, watcher) if f.name == redis_relay.NAME)
        tasks = [
            asyncio.create_task(follower.run(), name="follower"),
            asyncio.create_task(watcher.run(), name="watcher"),
            asyncio.create_task(watcher.listen(engine.database.connect), name="listener"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class Bench:
    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings, self.database_url = settings, database_url
        self.key = RedisLayout(settings.redis_prefix).all_orders
        self.last_id = "0-0"

    async def run(self, events: int, interval_s: float) -> RunStats:
        """Append `events` events; the commit → arrival delays and the append rate reached."""
        committed: dict[int, float] = {}
        arrived: dict[int, float] = {}
        appending_done = asyncio.Event()
        appending_s = 0.0
        redis = aioredis.Redis.from_url(self.settings.redis_url or "", decode_responses=True)
        async with await AsyncConnection.connect(self.database_url, autocommit=True) as conn:

            @asynccontextmanager
            async def one_connection() -> AsyncIterator[AsyncConnection[Any]]:
                yield conn

            store = PostgresEventStore(one_connection)

            async def writer() -> None:
                nonlocal appending_s
                start = time.perf_counter()
                for i in range(events):
                    if interval_s:
                        await asyncio.sleep(max(0.0, start + i * interval_s - time.perf_counter()))
                    oid = new_order_id()
                    meta = EventMetadata(correlation_id=oid, causation_id="bench", actor="bench")
                    recorded = await store.append(oid, 0, [pending_event(oid)], meta)
                    committed[recorded[0].position] = time.perf_counter()
                appending_s = time.perf_counter() - start
                appending_done.set()

            async def reader() -> None:
                deadline: float | None = None
                while deadline is None or time.perf_counter() < deadline:
                    reply = cast(
                        XReadReply, await redis.xread({self.key: self.last_id}, block=BLOCK_MS, count=1000)
                    )
                    now = time.perf_counter()
                    for _, entries in reply or []:
                        for entry_id, fields in entries:
                            arrived.setdefault(int(fields["position"]), now)
                            self.last_id = entry_id
                    if appending_done.is_set():
                        if committed.keys() <= arrived.keys():
                            return
                        deadline = deadline or time.perf_counter() + DRAIN_TIMEOUT_S

            try:
                async with asyncio.TaskGroup() as tg:  # one failing cancels the other
                    tg.create_task(writer())
                    tg.create_task(reader())
            finally:
                await redis.aclose()
        missing = committed.keys() - arrived.keys()
        if missing:
            raise RuntimeError(f"{len(missing)} events never reached {self.key}, e.g. {min(missing)}")
        delays = [(arrived[p] - t) * 1000 for p, t in committed.items()]
        return RunStats.of(delays, events / appending_s)


async def measure(
    settings: Settings, database_url: str, events: int, runs: int, interval_s: float, shared_loop: bool
) -> list[RunStats]:
    relay_task = None
    relay_thread = None
    if shared_loop:
        relay_task = asyncio.create_task(run_relay(settings, database_url))
    else:
        relay_thread = RelayThread(settings, database_url)
        relay_thread.start()
    try:
        bench = Bench(settings, database_url)
        await bench.run(WARM_UP, interval_s)  # connections, first NOTIFY, code paths
        results = []
        for run in range(runs):
            stats = await bench.run(events, interval_s)
            results.append(stats)
            print(f"run {run + 1}: {stats.line()}", flush=True)
        return results
    finally:
        if relay_task is not None:
            logging.getLogger("psycopg").setLevel(logging.ERROR)  # cancelled LISTEN: expected
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)
        if relay_thread is not None:
            relay_thread.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help=f"events per run (max {MAX_EVENTS})")
    parser.add_argument("--runs", type=int, default=3, help=f"runs (max {MAX_RUNS})")
    parser.add_argument("--interval-ms", type=float, default=5.0, help="time between append starts")
    parser.add_argument("--burst", action="store_true", help="append as fast as possible (no interval)")
    parser.add_argument("--shared-loop", action="store_true", help="run the relay on the writer's loop")
    args = parser.parse_args()
    events, runs = min(max(args.events, 1), MAX_EVENTS), min(max(args.runs, 1), MAX_RUNS)
    interval_s = 0.0 if args.burst else max(args.interval_ms, 0.0) / 1000
    servers = "system" if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL") else "embedded"
    prefix = f"oebench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    with scratch_servers() as (database_url, redis_url):
        settings = Settings(database_url=database_url, redis_url=redis_url, redis_prefix=prefix)
        try:
            results = asyncio.run(measure(settings, database_url, events, runs, interval_s, args.shared_loop))
        finally:
            delete_prefix(redis_url, prefix)
    medians = statistics.median(r.median for r in results)
    p99s = statistics.median(r.p99 for r in results)
    pacing = "burst" if args.burst else f"one append every {interval_s * 1000:g} ms"
    print(f"median of {runs} run medians {medians:.2f} ms, median of run p99s {p99s:.2f} ms")
    print(
        f"outbox commit->XREAD delay ({servers} servers, relay woken by NOTIFY, "
        f"{'shared loop' if args.shared_loop else 'relay on its own loop'}, {pacing}, "
        f"{events} events x {runs} runs): median {medians:.2f} ms, p99 {p99s:.2f} ms "
        f"(medians of runs); max {max(r.max for r in results):.1f} ms; "
        f"wall {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()

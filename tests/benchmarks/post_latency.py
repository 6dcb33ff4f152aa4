"""Latency of POST /api/orders/execute under many concurrent clients, against one client,
on the real engine: the HTTP answer, i.e. the order accepted into the log, not confirmed.

    .venv/bin/python -m tests.benchmarks.post_latency                          # 200 clients x 10, 3 runs
    .venv/bin/python -m tests.benchmarks.post_latency --clients 50 --requests 20 --runs 5

Each run gets a fresh database, Redis prefix and engine (`orderengine run`: API,
worker, scheduler), set up as `tests.benchmarks.flood` sets it up (the defaults of
`.env.example`) with the limits lifted: MOCK_LATENCY_SCALE=0, QUEUE_MAX_CONCURRENT
(`--concurrency`), ORDER_PROCESSOR_RATE (`--rate`), and ORDER_RATE_PER_MIN=0 so no
per-user submission limit answers 429. Then, on that engine:

1. baseline: one client POSTs `--baseline` market orders one after another (after a
   few warm-up orders); the worker is then left to finish them, so the next phase
   starts on an idle engine;
2. concurrent: `--clients` clients, each its own `httpx.AsyncClient` with one
   connection and its own userId, start together; each sends one unmeasured order
   (opening its connection), then `--requests` measured ones in a row.

Latency is measured per request around `client.post` (client-side, so it includes
the clients' own event loop: all clients share one process, on the same cores as
the engine, Postgres and Redis). The worker processes the accepted orders meanwhile,
as in a deployment. Requests/s is the measured 200s over the time from the first
measured request to the last answer; the clients' own CPU use is printed beside it
(as a share of one core): what they take from the engine.

Every answer must be 200: any other status or a transport error is counted and
the script ends with exit status 1. It fails the same way if the orders stored
differ from the ones answered: the ids of the `OrderPending` events in the log must
be exactly the orderIds the 200s returned, and GET /api/orders?userId= must list,
for a few clients, as many orders as that client got 200s (polled until the read
model has caught up, bounded).

Per run it prints p50/p90/p99/max in ms and requests/s of both phases and the ratio
of the p50s; with `--runs` > 1 the medians of the runs; last, one summary line.
Only talks to 127.0.0.1; the clients, requests, runs and every wait are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import psycopg

from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.benchmarks.flood import (
    Options as FloodOptions,
)
from tests.benchmarks.flood import (
    RedisSamples,
    deadline_s,
    make_engine,
    percentile,
    summarise_engine_log,
    wait_terminal,
)
from tests.e2e.engine import Engine

MAX_CLIENTS, MAX_REQUESTS, MAX_BASELINE, MAX_RUNS = 500, 100, 2000, 10
BASELINE_WARMUP = 5
POST_TIMEOUT_S = 30.0
LISTED_USERS = 5  # clients whose orders are counted through GET /api/orders
LIST_WAIT_S = 60.0
LIST_POLL_S = 0.25
MAX_PAGES = 20
CONNECT_TRIES = 30
EXECUTE = "/api/orders/execute"


@dataclass
class Phase:
    """One phase's answers: latencies of the measured 200s, order ids by user, failures."""

    latencies_s: list[float] = field(default_factory=list)
    first_start: float = math.inf  # perf_counter at the first measured request's start
    last_end: float = -math.inf  # and at the last one's answer
    client_cpu_s: float = 0.0  # this process's CPU time over the phase: what the clients cost

    @property
    def wall_s(self) -> float:
        """From the first measured request to the last answer."""
        return max(0.0, self.last_end - self.first_start)

    ids_by_user: dict[str, list[str]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)

    def accepted(self) -> int:
        return sum(len(ids) for ids in self.ids_by_user.values())


@dataclass(frozen=True)
class Figures:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    per_s: float
    client_cpu: float  # share of one core the clients' process used
    count: int

    @staticmethod
    def of(phase: Phase) -> Figures:
        ms = sorted(t * 1000 for t in phase.latencies_s)
        return Figures(
            p50_ms=percentile(ms, 0.5),
            p90_ms=percentile(ms, 0.9),
            p99_ms=percentile(ms, 0.99),
            max_ms=ms[-1] if ms else math.nan,
            per_s=len(ms) / phase.wall_s if phase.wall_s else math.nan,
            client_cpu=phase.client_cpu_s / phase.wall_s if phase.wall_s else math.nan,
            count=len(ms),
        )

    @staticmethod
    def median(runs: list[Figures]) -> Figures:
        """Each figure's median over the runs."""
        return Figures(
            *(statistics.median(getattr(f, name) for f in runs) for name in Figures.__dataclass_fields__)
        )

    def text(self) -> str:
        return (
            f"p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"max {self.max_ms:.1f} ms, {self.per_s:.0f} req/s (clients' CPU {self.client_cpu:.0%} of a core)"
        )


@dataclass(frozen=True)
class RunResult:
    concurrent: Figures
    baseline: Figures
    non_200: int
    error_examples: list[tuple[str, int]]
    problems: list[str]  # stored orders that do not match the answers

    @property
    def ratio(self) -> float:
        return self.concurrent.p50_ms / self.baseline.p50_ms


def order_body(user_id: str, rng: random.Random) -> dict[str, Any]:
    return {
        "userId": user_id,
        "orderType": "market",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amount": str(Decimal(rng.randint(1, 2000)) / 1000),  # 0.001 .. 2 SOL
    }


def local_client(base_url: str) -> httpx.AsyncClient:
    """A client with one connection to the engine on 127.0.0.1 (no proxy from the environment)."""
    if not base_url.startswith("http://127.0.0.1:"):
        raise ValueError(f"benchmark clients only talk to 127.0.0.1, not {base_url}")
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=POST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        trust_env=False,
    )


async def post_order(
    client: httpx.AsyncClient, user_id: str, rng: random.Random, phase: Phase, measured: bool
) -> None:
    """POST one order; a 200's latency (if `measured`) and order id, or the failure, go into `phase`."""
    start = time.perf_counter()
    try:
        response = await client.post(EXECUTE, json=order_body(user_id, rng))
    except httpx.HTTPError as exc:
        phase.errors[f"{type(exc).__name__}: {exc}"[:160]] += 1
        return
    end = time.perf_counter()
    if response.status_code != 200:
        phase.errors[f"HTTP {response.status_code}: {response.text[:120]}"] += 1
        return
    phase.ids_by_user.setdefault(user_id, []).append(str(response.json()["orderId"]))
    if measured:
        phase.latencies_s.append(end - start)
        phase.first_start, phase.last_end = min(phase.first_start, start), max(phase.last_end, end)


async def baseline(base_url: str, requests: int, rng: random.Random) -> Phase:
    """One client, one request at a time."""
    phase = Phase()
    async with local_client(base_url) as client:
        for _ in range(BASELINE_WARMUP):
            await post_order(client, "post-seq", rng, phase, measured=False)
        cpu = time.process_time()
        for _ in range(requests):
            await post_order(client, "post-seq", rng, phase, measured=True)
        phase.client_cpu_s = time.process_time() - cpu
    return phase


async def concurrent(base_url: str, clients: int, requests: int, rng: random.Random) -> Phase:
    """`clients` clients, each with its own connection and userId, `requests` POSTs each in a row."""
    phase = Phase()
    users = [f"post-c{i:03d}" for i in range(clients)]
    async with AsyncExitStack() as stack:
        pool = [await stack.enter_async_context(local_client(base_url)) for _ in users]

        async def one_client(client: httpx.AsyncClient, user_id: str) -> None:
            # The unmeasured first request opens the connection. The loop follows at once: a
            # connection left idle past the server's keep-alive timeout (uvicorn: 5 s) may be
            # closed just as the next POST goes out on it, which httpx reports as a ReadError.
            await post_order(client, user_id, rng, phase, measured=False)
            for _ in range(requests):
                await post_order(client, user_id, rng, phase, measured=True)

        cpu = time.process_time()
        await asyncio.gather(*(one_client(c, u) for c, u in zip(pool, users, strict=True)))
        phase.client_cpu_s = time.process_time() - cpu
    return phase


def stored_pending(database_url: str) -> dict[str, str]:
    """order id -> userId of every `OrderPending` event in the log. A shared server may be
    out of connections for a moment (other engines and tests use it): a few tries, then give up."""
    for attempt in range(CONNECT_TRIES):
        try:
            with psycopg.connect(database_url) as conn:
                rows = conn.execute(
                    "SELECT stream_id, data->>'user_id' FROM events WHERE type = 'OrderPending'"
                ).fetchall()
            return {str(order_id): str(user_id) for order_id, user_id in rows}
        except psycopg.OperationalError as exc:
            if attempt == CONNECT_TRIES - 1:
                raise
            print(f"  … reading the log: {exc}; trying again", flush=True)
            time.sleep(1.0)
    raise AssertionError("unreachable")


async def listed_count(client: httpx.AsyncClient, user_id: str) -> int:
    """How many orders GET /api/orders lists for `user_id` (every page, bounded)."""
    count, cursor = 0, None
    for _ in range(MAX_PAGES):
        params = {"userId": user_id, "limit": "200", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/orders", params=params)
        response.raise_for_status()
        page = response.json()
        count += len(page["orders"])
        cursor = page["nextCursor"]
        if cursor is None:
            return count
    raise RuntimeError(f"more than {MAX_PAGES} pages of orders for {user_id}")


async def check_listed(base_url: str, expected: dict[str, int]) -> list[str]:
    """Poll GET /api/orders until each user lists `expected` orders; the mismatches left at the deadline."""
    deadline = time.monotonic() + LIST_WAIT_S
    async with local_client(base_url) as client:
        while True:
            counts = {u: await listed_count(client, u) for u in expected}
            wrong = [f"{u}: listed {counts[u]}, accepted {n}" for u, n in expected.items() if counts[u] != n]
            if not wrong or time.monotonic() > deadline:
                return wrong
            await asyncio.sleep(LIST_POLL_S)


def check_stored(database_url: str, phases: list[Phase]) -> list[str]:
    """The log's `OrderPending` events against the 200s: the same order ids, for the same users."""
    answered = {oid: user for p in phases for user, ids in p.ids_by_user.items() for oid in ids}
    total = sum(p.accepted() for p in phases)
    stored = stored_pending(database_url)
    problems = []
    if len(answered) != total:
        problems.append(f"{total} 200s named only {len(answered)} distinct order ids")
    if stored != answered:
        missing, extra = answered.keys() - stored.keys(), stored.keys() - answered.keys()
        moved = sum(stored[o] != answered[o] for o in answered.keys() & stored.keys())
        problems.append(
            f"log has {len(stored)} OrderPending for {len(answered)} accepted orders: "
            f"{len(missing)} missing, {len(extra)} unexpected, {moved} under another userId"
        )
    return problems


@dataclass(frozen=True)
class Options:
    clients: int
    requests: int
    baseline: int
    concurrency: int
    rate: int


async def measure(
    engine: Engine, database_url: str, opts: Options, seed: int
) -> tuple[list[Phase], list[str]]:
    """Both phases on a running engine, and the listing check (which needs the engine)."""
    rng = random.Random(seed)
    base = await baseline(engine.base_url, opts.baseline, rng)
    # Let the worker finish the baseline's orders so the concurrent phase starts on an idle engine.
    drain = deadline_s(base.accepted(), opts.rate, opts.concurrency, 0.0)
    if not await wait_terminal(database_url, base.accepted(), drain, RedisSamples()):
        print(f"  ! the baseline's orders did not all end within {drain:.0f} s", flush=True)
    flood = await concurrent(engine.base_url, opts.clients, opts.requests, rng)
    users = sorted(flood.ids_by_user)
    sample = users[:: max(1, len(users) // LISTED_USERS)][:LISTED_USERS]
    problems = await check_listed(engine.base_url, {u: len(flood.ids_by_user[u]) for u in sample})
    return [base, flood], problems


def one_run(opts: Options, seed: int) -> RunResult:
    with scratch_servers() as (database_url, redis_url):
        flood_opts = FloodOptions(
            orders=opts.clients * (opts.requests + 1),
            scale="0",
            rate=opts.rate,
            concurrency=opts.concurrency,
            idle_ms=100,
            clients=opts.clients,
        )
        engine = make_engine(database_url, redis_url, flood_opts)
        engine.env["ORDER_RATE_PER_MIN"] = "0"  # no per-user submission limit
        engine.start()
        try:
            phases, problems = asyncio.run(measure(engine, database_url, opts, seed))
        finally:
            engine.stop()
            print("  " + summarise_engine_log(engine.log_path, top=3).text, flush=True)
            delete_prefix(redis_url, engine.prefix)
        # Read the log once the engine is stopped and its connections are back.
        problems = check_stored(database_url, phases) + problems
    base, flood = phases
    errors = base.errors + flood.errors
    return RunResult(
        concurrent=Figures.of(flood),
        baseline=Figures.of(base),
        non_200=sum(errors.values()),
        error_examples=errors.most_common(3),
        problems=problems,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help=f"concurrent clients (max {MAX_CLIENTS})")
    parser.add_argument("--requests", type=int, default=10, help=f"requests per client (max {MAX_REQUESTS})")
    parser.add_argument(
        "--baseline", type=int, default=200, help=f"requests of the 1-client baseline (max {MAX_BASELINE})"
    )
    parser.add_argument("--runs", type=int, default=3, help=f"runs (max {MAX_RUNS})")
    parser.add_argument("--concurrency", type=int, default=1000, help="QUEUE_MAX_CONCURRENT (in flight)")
    parser.add_argument(
        "--rate", type=int, default=1_000_000, help="ORDER_PROCESSOR_RATE (starts per minute)"
    )
    args = parser.parse_args()
    opts = Options(
        clients=min(max(args.clients, 1), MAX_CLIENTS),
        requests=min(max(args.requests, 1), MAX_REQUESTS),
        baseline=min(max(args.baseline, 1), MAX_BASELINE),
        concurrency=max(args.concurrency, 1),
        rate=max(args.rate, 1),
    )
    runs = min(max(args.runs, 1), MAX_RUNS)
    servers = "system" if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL") else "embedded"
    setup = (
        f"MOCK_LATENCY_SCALE=0, QUEUE_MAX_CONCURRENT={opts.concurrency}, "
        f"ORDER_PROCESSOR_RATE={opts.rate}/min, ORDER_RATE_PER_MIN=0, other settings default"
    )
    print(
        f"post_latency: {opts.clients} clients x {opts.requests} POSTs vs 1 client x {opts.baseline}, "
        f"{setup}, {servers} servers",
        flush=True,
    )
    results: list[RunResult] = []
    base_seed = random.SystemRandom().randrange(1_000_000)
    for run in range(runs):
        r = one_run(opts, base_seed + run)
        results.append(r)
        print(
            f"run {run + 1}: {opts.clients} clients: {r.concurrent.text()} ({r.concurrent.count} measured); "
            f"1 client: {r.baseline.text()}; p50 ratio {r.ratio:.1f}x; non-200 {r.non_200}",
            flush=True,
        )
        for error, n in r.error_examples:
            print(f"  {n}x {error}", flush=True)
        for problem in r.problems:
            print(f"  stored orders: {problem}", flush=True)
        if not r.problems:
            print("  stored orders: the log's OrderPending ids are exactly the 200s' orderIds", flush=True)

    ratio = statistics.median(r.ratio for r in results)
    summary = (
        f"POST /api/orders/execute, {opts.clients} clients x {opts.requests}: "
        f"{Figures.median([r.concurrent for r in results]).text()}; "
        f"1 client: {Figures.median([r.baseline for r in results]).text()}; p50 ratio {ratio:.1f}x"
    )
    print(f"{'medians of ' + str(runs) + ' runs' if runs > 1 else 'result'} ({setup}): {summary}")
    non_200 = sum(r.non_200 for r in results)
    problems = sum(len(r.problems) for r in results)
    if non_200 or problems:
        print(
            f"FAILED: {non_200} answers were not 200 and {problems} stored-order checks failed "
            f"over {runs} run(s)",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()

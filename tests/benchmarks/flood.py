"""A flood of market orders against the real engine: do the deployment-wide limits hold,
and how many orders a second does it finish when they are lifted?

    .venv/bin/python -m tests.benchmarks.flood                      # 200 orders, the defaults
    .venv/bin/python -m tests.benchmarks.flood --scale 0 --rate 1000000 --concurrency 1000 \\
        --orders 2000 --runs 3                                      # throughput, no DEX latency

Each run gets a fresh database, Redis prefix and engine (`orderengine run`: API,
worker, scheduler) with the default settings of `.env.example` — the test
harness's FAST overrides are put back — except what the options change:
MOCK_LATENCY_SCALE (`--scale`), ORDER_PROCESSOR_RATE (`--rate`),
QUEUE_MAX_CONCURRENT (`--concurrency`), WORKER_IDLE_MS (`--idle-ms`).

`--clients` HTTP clients POST the orders (SOL→USDC, varied small amounts, several
userIds) as fast as the API answers; the script then polls the `events` table until
every order has a terminal event (bounded by a deadline derived from the number of
orders, the rate and the concurrency). Everything else comes from the log's
`recorded_at` (Postgres' clock_timestamp(), on this host's clock):

- starts: an order starts at its `OrderRouting` event (the limiter grants its slot
  just before the append); the most starts in any 60 s window, the mean start
  rate (starts − 1 over first → last start), and starts per minute since the first;
- in flight: the most orders at one instant between their `OrderRouting` and their
  terminal event (confirmed, failed, cancelled, expired);
- totals: confirmed and failed counts, wall time from the first POST to the last
  terminal event and orders/s over it, POST latency and POST → `OrderConfirmed`;
- step gaps: the mean time between an order's consecutive events (queue waits show here).

Cross-checks from Redis, sampled every 100 ms from before the first POST: the size
of the limiter's in-flight set, the depth of the broker's ready queue, and (for a
limit up to 200) the set's members. A slot is held from just before `OrderRouting` to
just after the terminal event, so an order the log shows executing at a sample
(with 50 ms of margin either side) but which is not in the set is running *without
a slot*; those orders are counted and a few named.

The engine log (LOG_LEVEL=WARNING) is summarised per run: counts by level and the
most frequent messages, so a misbehaving engine shows in the output. Per run it
prints one line and the step gaps; with `--runs` > 1 the medians too; last, one
summary line for an issue note. Only talks to 127.0.0.1; the orders, runs and every
wait are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import os
import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import redis.asyncio as aioredis

from adapters.settings import Settings
from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.e2e.engine import FAST, Engine

MAX_ORDERS, MAX_RUNS = 2000, 5
USERS = 7
TERMINAL = ("OrderConfirmed", "OrderFailed", "OrderCancelled", "OrderExpired")
POLL_S = 0.5
SAMPLE_S = 0.1
MEMBERS_UP_TO = 200  # the limiter's members are sampled only for limits up to this
MARGIN_S = 0.05  # slack around a sample when checking slot membership against the log
PROGRESS_S = 15.0
POST_TIMEOUT_S = 30.0


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (q in 0..1); nan if empty."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def make_engine(database_url: str, redis_url: str, opts: Options) -> Engine:
    """An engine with the defaults (from `Settings`, as in .env.example) and the options.

    `Engine` applies the harness's FAST test settings first: the known ones are set back
    to their defaults here, and any it gains later are dropped from the engine's
    environment, so the engine falls back to its own default for them too."""
    d = Settings()
    env = {
        "MOCK_LATENCY_SCALE": opts.scale,
        "BACKOFF_BASE_MS": str(d.backoff_base_ms),
        "WORKER_IDLE_MS": str(opts.idle_ms),
        "LIMIT_RECHECK_INTERVAL_MS": str(d.limit_recheck_interval_ms),
        "STUCK_AFTER_S": str(d.stuck_after_s),
        "QUEUE_MAX_CONCURRENT": str(opts.concurrency),
        "ORDER_PROCESSOR_RATE": str(opts.rate),
        "LOG_LEVEL": "WARNING",
    }
    engine = Engine(database_url, redis_url, **env)
    for key in FAST.keys() - env.keys():
        engine.env.pop(key, None)
    return engine


def deadline_s(orders: int, rate: int, concurrency: int, scale: float) -> float:
    """Generous bound on a run: rate windows + slot turns at the brief's delays + CPU."""
    rate_bound = 60.0 * ((orders - 1) // rate)
    per_order = scale * (0.4 + 3.0) + 0.5  # quotes + swap at their maxima, plus overhead
    slot_bound = math.ceil(orders / concurrency) * per_order
    return 120.0 + 2 * (rate_bound + slot_bound + 0.05 * orders)


# -- the flood ---------------------------------------------------------------


@dataclass
class Posted:
    order_id: str | None
    sent_at: float  # wall clock (time.time()), comparable with recorded_at on this host
    latency_s: float
    error: str | None = None


async def flood(base_url: str, orders: int, clients: int, seed: int) -> list[Posted]:
    """POST `orders` market orders from `clients` concurrent clients, each as soon as it can."""
    rng = random.Random(seed)
    bodies = [
        {
            "userId": f"flood-{i % USERS}",
            "orderType": "market",
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amount": str(Decimal(rng.randint(1, 2000)) / 1000),  # 0.001 .. 2 SOL
        }
        for i in range(orders)
    ]
    results: list[Posted] = []
    next_index = iter(range(orders))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=POST_TIMEOUT_S, limits=limits) as client:

        async def one_client() -> None:
            for i in next_index:  # shared iterator: each order is posted once
                sent, start = time.time(), time.perf_counter()
                try:
                    response = await client.post("/api/orders/execute", json=bodies[i])
                except httpx.HTTPError as exc:
                    results.append(Posted(None, sent, time.perf_counter() - start, repr(exc)))
                    continue
                latency = time.perf_counter() - start
                if response.status_code == 200:
                    results.append(Posted(str(response.json()["orderId"]), sent, latency))
                else:
                    error = f"HTTP {response.status_code}: {response.text[:200]}"
                    results.append(Posted(None, sent, latency, error))

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return results


@dataclass
class RedisSamples:
    """What the sampler saw: in-flight set sizes, ready-queue depths, set members."""

    inflight_max: int = 0
    queue_depths: list[int] = field(default_factory=list)
    # (wall time before the read, after it, the members)
    members: list[tuple[float, float, frozenset[str]]] = field(default_factory=list)


async def sample_redis(
    redis_url: str, prefix: str, keep_members: bool, samples: RedisSamples, stop: asyncio.Event
) -> None:
    """Every SAMPLE_S until `stop`, into `samples`: the limiter's in-flight set and the
    broker's ready queue."""
    inflight_key, queue_key = f"{prefix}:limiter:inflight", f"{prefix}:dramatiq:orders"
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        while not stop.is_set():
            before = time.time()
            async with redis.pipeline(transaction=True) as pipe:
                if keep_members:
                    pipe.zrange(inflight_key, 0, -1)
                else:
                    pipe.zcard(inflight_key)
                pipe.llen(queue_key)
                inflight, depth = await pipe.execute()
            after = time.time()
            if keep_members:
                samples.members.append((before, after, frozenset(inflight)))
                inflight = len(inflight)
            samples.inflight_max = max(samples.inflight_max, int(inflight))
            samples.queue_depths.append(int(depth))
            try:
                await asyncio.wait_for(stop.wait(), SAMPLE_S)
            except TimeoutError:
                pass
    finally:
        await redis.aclose()


async def wait_terminal(database_url: str, orders: int, timeout: float, samples: RedisSamples) -> bool:
    """Poll the log until `orders` orders have a terminal event; False if the deadline passed."""
    started = time.monotonic()
    next_progress = started + PROGRESS_S
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT count(DISTINCT stream_id) FILTER (WHERE type = ANY(%s)),"
                " count(DISTINCT stream_id) FILTER (WHERE type = 'OrderRouting') FROM events",
                (list(TERMINAL),),
            )
            row = await cur.fetchone()
            assert row is not None
            terminal, routed = int(row[0]), int(row[1])
            now = time.monotonic()
            if terminal >= orders:
                return True
            if now - started > timeout:
                return False
            if now >= next_progress:
                next_progress += PROGRESS_S
                depth = samples.queue_depths[-1] if samples.queue_depths else "?"
                print(
                    f"  … {now - started:.0f} s: {routed}/{orders} started, {terminal}/{orders} ended, "
                    f"limiter in flight max so far {samples.inflight_max}, broker queue {depth}",
                    flush=True,
                )
            await asyncio.sleep(POLL_S)


# -- analysis ----------------------------------------------------------------


@dataclass
class OrderTimes:
    started: float | None = None  # first OrderRouting
    ended: float | None = None  # first terminal event
    outcome: str | None = None
    status: str = "pending"
    error: str | None = None
    events: list[tuple[str, float]] = field(default_factory=list)


def read_log(database_url: str) -> dict[str, OrderTimes]:
    """Each order's events, start, end and outcome from the event log (epoch seconds)."""
    orders: dict[str, OrderTimes] = {}
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT stream_id, type, recorded_at, data->>'error' FROM events ORDER BY position"
        ).fetchall()
    for stream_id, type_, recorded_at, error in rows:
        o = orders.setdefault(stream_id, OrderTimes())
        t = recorded_at.timestamp()
        o.events.append((type_, t))
        if type_ == "OrderRouting" and o.started is None:
            o.started = t
        if type_ in TERMINAL and o.ended is None:
            o.ended, o.outcome, o.error = t, type_, error
        o.status = type_
    return orders


def max_in_window(times: Sequence[float], window_s: float) -> int:
    """Most of the ascending `times` within any half-open window [t, t + window_s)."""
    return max((bisect.bisect_left(times, t + window_s) - i for i, t in enumerate(times)), default=0)


def max_overlap(intervals: Sequence[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an end at t closes before a start at t)."""
    # Sorting (time, delta) puts an end (-1) before a start (+1) at equal times.
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, delta in edges:
        current += delta
        best = max(best, current)
    return best


def slotless(
    intervals: dict[str, tuple[float, float]], members: list[tuple[float, float, frozenset[str]]]
) -> dict[str, int]:
    """Orders executing per the log at a sample but absent from the limiter's set, with
    the number of such samples each."""
    found: Counter[str] = Counter()
    for before, after, held in members:
        for order_id, (start, end) in intervals.items():
            if start < before - MARGIN_S and end > after + MARGIN_S and order_id not in held:
                found[order_id] += 1
    return dict(found)


def step_gaps(orders: Sequence[OrderTimes]) -> list[tuple[str, int, float]]:
    """(from→to, count, mean seconds) for consecutive events, the most frequent first."""
    gaps: defaultdict[str, list[float]] = defaultdict(list)
    for o in orders:
        for (a, ta), (b, tb) in zip(o.events, o.events[1:], strict=False):
            gaps[f"{a.removeprefix('Order')}→{b.removeprefix('Order')}"].append(tb - ta)
    return sorted(((k, len(v), statistics.fmean(v)) for k, v in gaps.items()), key=lambda x: -x[1])


@dataclass(frozen=True)
class RunStats:
    posted: int
    post_errors: int
    confirmed: int
    failed: int
    other_end: int
    unfinished: int
    starts_max_60s: int
    start_rate_per_min: float
    starts_by_minute: list[int]
    inflight_max: int
    limiter_sampled_max: int
    queue_max: int
    queue_median: float
    slotless: dict[str, int]
    slot_samples: int
    post_s: float
    wall_s: float
    orders_per_s: float
    post_p50_ms: float
    post_p99_ms: float
    confirm_p50_s: float
    confirm_p99_s: float
    fail_reasons: list[tuple[str, int]]
    stuck_states: list[tuple[str, int]]
    gaps: list[tuple[str, int, float]]

    def line(self) -> str:
        by_minute = (
            f" (per minute from the first start: {', '.join(map(str, self.starts_by_minute))})"
            if len(self.starts_by_minute) <= 12
            else ""
        )
        if self.slot_samples:
            examples = ", ".join(sorted(self.slotless, key=lambda k: -self.slotless[k])[:3])
            slots = f"{len(self.slotless)} orders seen executing without a slot" + (
                f" (e.g. {examples})" if examples else ""
            )
        else:
            slots = "slot membership not sampled"
        text = (
            f"{self.posted} posted ({self.post_errors} POST errors), {self.confirmed} confirmed, "
            f"{self.failed} failed, {self.other_end} cancelled/expired, {self.unfinished} unfinished; "
            f"starts: max {self.starts_max_60s} in a 60 s window, mean {self.start_rate_per_min:.0f}/min"
            f"{by_minute}; in flight max {self.inflight_max} (limiter sampled {self.limiter_sampled_max}; "
            f"{slots}); broker queue max {self.queue_max} median {self.queue_median:.0f}; "
            f"wall {self.wall_s:.1f} s = {self.orders_per_s:.1f} orders/s (POSTs took {self.post_s:.1f} s); "
            f"POST p50 {self.post_p50_ms:.1f} ms p99 {self.post_p99_ms:.1f} ms; "
            f"POST->confirmed p50 {self.confirm_p50_s:.2f} s p99 {self.confirm_p99_s:.2f} s"
        )
        if self.fail_reasons:
            text += "; failures: " + "; ".join(f"{n}× {r}" for r, n in self.fail_reasons)
        if self.stuck_states:
            text += "; unfinished at: " + ", ".join(f"{n}× {s}" for s, n in self.stuck_states)
        return text

    def gaps_line(self) -> str:
        return "step gaps (mean): " + ", ".join(
            f"{k} {mean * 1000:.0f} ms" if mean < 1 else f"{k} {mean:.2f} s"
            for k, count, mean in self.gaps
            if count * 100 >= self.posted  # leave out the rare transitions
        )


def analyse(posted: list[Posted], log: dict[str, OrderTimes], samples: RedisSamples) -> RunStats:
    ok = [p for p in posted if p.order_id is not None]
    mine = [(p, log.get(p.order_id, OrderTimes())) for p in ok if p.order_id is not None]
    starts = sorted(o.started for _, o in mine if o.started is not None)
    # An order started but not ended is still in flight at the end of the run.
    open_end = max((o.ended for _, o in mine if o.ended is not None), default=time.time())
    intervals = {
        p.order_id: (o.started, o.ended if o.ended is not None else open_end)
        for p, o in mine
        if p.order_id is not None and o.started is not None
    }
    outcomes = Counter(o.outcome for _, o in mine)
    first_post = min((p.sent_at for p in posted), default=0.0)
    last_post_done = max((p.sent_at + p.latency_s for p in posted), default=0.0)
    ends = [o.ended for _, o in mine if o.ended is not None]
    wall = (max(ends) - first_post) if ends else math.nan
    confirm_s = sorted(
        o.ended - p.sent_at for p, o in mine if o.outcome == "OrderConfirmed" and o.ended is not None
    )
    post_ms = sorted(p.latency_s * 1000 for p in posted)
    by_minute: list[int] = []
    if starts:
        by_minute = [0] * (int((starts[-1] - starts[0]) // 60) + 1)
        for t in starts:
            by_minute[int((t - starts[0]) // 60)] += 1
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    reasons = Counter((o.error or "?")[:120] for _, o in mine if o.outcome == "OrderFailed")
    reasons.update(p.error[:120] for p in posted if p.error)
    return RunStats(
        posted=len(posted),
        post_errors=len(posted) - len(ok),
        confirmed=outcomes["OrderConfirmed"],
        failed=outcomes["OrderFailed"],
        other_end=outcomes["OrderCancelled"] + outcomes["OrderExpired"],
        unfinished=outcomes[None],
        starts_max_60s=max_in_window(starts, 60.0),
        start_rate_per_min=(len(starts) - 1) * 60 / span if span else math.nan,
        starts_by_minute=by_minute,
        inflight_max=max_overlap(list(intervals.values())),
        limiter_sampled_max=samples.inflight_max,
        queue_max=max(samples.queue_depths, default=0),
        queue_median=statistics.median(samples.queue_depths) if samples.queue_depths else math.nan,
        slotless=slotless(intervals, samples.members),
        slot_samples=len(samples.members),
        post_s=last_post_done - first_post,
        wall_s=wall,
        orders_per_s=(outcomes["OrderConfirmed"] + outcomes["OrderFailed"]) / wall if ends else math.nan,
        post_p50_ms=percentile(post_ms, 0.5),
        post_p99_ms=percentile(post_ms, 0.99),
        confirm_p50_s=percentile(confirm_s, 0.5),
        confirm_p99_s=percentile(confirm_s, 0.99),
        fail_reasons=reasons.most_common(5),
        stuck_states=Counter(o.status for _, o in mine if o.outcome is None).most_common(),
        gaps=step_gaps([o for _, o in mine]),
    )


@dataclass
class EngineLog:
    text: str
    errors: int = 0
    warnings: int = 0
    # orderId -> the warning/error messages that named it
    orders: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def summarise_engine_log(path: Path, top: int = 6) -> EngineLog:
    """The engine's JSON log in short: counts by level, the most frequent warnings and
    errors, lines that are not JSON (tracebacks, third-party prints), orders named."""
    if not path.exists():
        return EngineLog(f"no log at {path}")
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    other: list[str] = []
    other_count = 0
    result = EngineLog("")
    with path.open(errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                other_count += 1
                if len(other) < 5:
                    other.append(line[:200])
                continue
            level = str(entry.get("level", "?"))
            levels[level] += 1
            if level not in ("debug", "info"):
                exc_tail = (entry.get("exc") or "").strip().splitlines()[-1:]
                detail = entry.get("error") or (exc_tail[0] if exc_tail else "")
                status = f" [{entry['status']}]" if "status" in entry else ""
                messages[f"{level} {entry.get('logger')}: {entry.get('msg')}{status} {detail}"[:220]] += 1
                if entry.get("orderId"):
                    result.orders[str(entry["orderId"])].add(str(entry.get("msg")))
    result.errors = levels["error"] + levels["critical"]
    result.warnings = levels["warning"]
    text = f"engine log {path}: " + (", ".join(f"{n} {lvl}" for lvl, n in levels.most_common()) or "empty")
    text += f", {other_count} non-JSON lines"
    for msg, n in messages.most_common(top):
        text += f"\n    {n}× {msg}"
    for line in other:
        text += f"\n    | {line}"
    result.text = text
    return result


# -- runs --------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    orders: int
    scale: str
    rate: int
    concurrency: int
    idle_ms: int
    clients: int


async def flood_and_wait(
    engine: Engine, database_url: str, redis_url: str, opts: Options, seed: int
) -> tuple[list[Posted], RedisSamples]:
    """Sample Redis, flood, wait for every accepted order to end (or the deadline)."""
    stop = asyncio.Event()
    keep_members = opts.concurrency <= MEMBERS_UP_TO
    samples = RedisSamples()
    sampler = asyncio.create_task(sample_redis(redis_url, engine.prefix, keep_members, samples, stop))
    try:
        await asyncio.sleep(0)  # let the sampler take its first sample before the first POST
        posted = await flood(engine.base_url, opts.orders, opts.clients, seed)
        accepted = sum(p.order_id is not None for p in posted)
        timeout = deadline_s(opts.orders, opts.rate, opts.concurrency, float(opts.scale))
        if not await wait_terminal(database_url, accepted, timeout, samples):
            print(f"  ! not every order ended within {timeout:.0f} s", flush=True)
    finally:
        stop.set()
        await sampler
    return posted, samples


def one_run(opts: Options, seed: int) -> tuple[RunStats, EngineLog]:
    with scratch_servers() as (database_url, redis_url):
        engine = make_engine(database_url, redis_url, opts).start()
        try:
            posted, samples = asyncio.run(flood_and_wait(engine, database_url, redis_url, opts, seed))
            stats = analyse(posted, read_log(database_url), samples)
        finally:
            engine.stop()
            log = summarise_engine_log(engine.log_path)
            print("  " + log.text, flush=True)
            delete_prefix(redis_url, engine.prefix)
    if stats.slotless:
        named = sum(1 for order_id in stats.slotless if order_id in log.orders)
        messages = Counter(m for order_id in stats.slotless for m in log.orders.get(order_id, ()))
        print(
            f"  of the {len(stats.slotless)} orders seen without a slot, {named} are named in engine "
            f"warnings: " + (", ".join(f"{n}× {m}" for m, n in messages.most_common(3)) or "none"),
            flush=True,
        )
    return stats, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200, help=f"orders per run (max {MAX_ORDERS})")
    parser.add_argument("--scale", default="1", help="MOCK_LATENCY_SCALE (1 = the brief's delays, 0 = none)")
    parser.add_argument("--rate", type=int, default=100, help="ORDER_PROCESSOR_RATE (starts per minute)")
    parser.add_argument("--concurrency", type=int, default=10, help="QUEUE_MAX_CONCURRENT (in flight)")
    parser.add_argument("--idle-ms", type=int, default=100, help="WORKER_IDLE_MS")
    parser.add_argument("--runs", type=int, default=1, help=f"runs (max {MAX_RUNS})")
    parser.add_argument("--clients", type=int, default=20, help="concurrent HTTP clients (max 100)")
    args = parser.parse_args()
    opts = Options(
        orders=min(max(args.orders, 1), MAX_ORDERS),
        scale=str(Decimal(args.scale)),
        rate=max(args.rate, 1),
        concurrency=max(args.concurrency, 1),
        idle_ms=max(args.idle_ms, 0),
        clients=min(max(args.clients, 1), 100),
    )
    runs = min(max(args.runs, 1), MAX_RUNS)
    servers = "system" if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL") else "embedded"
    setup = (
        f"MOCK_LATENCY_SCALE={opts.scale}, QUEUE_MAX_CONCURRENT={opts.concurrency}, "
        f"ORDER_PROCESSOR_RATE={opts.rate}/min, WORKER_IDLE_MS={opts.idle_ms}, other settings default"
    )
    print(f"flood: {opts.orders} orders from {opts.clients} clients, {setup}, {servers} servers", flush=True)
    results: list[RunStats] = []
    errors = warnings = 0
    base_seed = uuid.uuid4().int % 1_000_000
    for run in range(runs):
        stats, log = one_run(opts, base_seed + run)
        results.append(stats)
        errors, warnings = errors + log.errors, warnings + log.warnings
        print(f"run {run + 1}: {stats.line()}", flush=True)
        print(f"  {stats.gaps_line()}", flush=True)

    def med(name: str) -> float:
        return float(statistics.median(float(getattr(r, name)) for r in results))

    if runs > 1:
        print(
            f"medians of {runs} runs: {med('orders_per_s'):.1f} orders/s, wall {med('wall_s'):.1f} s, "
            f"starts max {med('starts_max_60s'):.0f} in 60 s, in flight max {med('inflight_max'):.0f}, "
            f"POST p50 {med('post_p50_ms'):.1f} ms p99 {med('post_p99_ms'):.1f} ms, "
            f"POST->confirmed p50 {med('confirm_p50_s'):.2f} s p99 {med('confirm_p99_s'):.2f} s"
        )
    checked = any(r.slot_samples for r in results)
    without_slot = f", {sum(len(r.slotless) for r in results)} seen without a slot" if checked else ""
    print(
        f"flood {opts.orders} orders x {runs} run(s) ({setup}): "
        f"confirmed {sum(r.confirmed for r in results)}, failed {sum(r.failed for r in results)}, "
        f"unfinished {sum(r.unfinished for r in results)}, "
        f"POST errors {sum(r.post_errors for r in results)}; "
        f"starts max {max(r.starts_max_60s for r in results)} in any 60 s window "
        f"(limit {opts.rate}); in flight max {max(r.inflight_max for r in results)} "
        f"(limit {opts.concurrency}; limiter sampled {max(r.limiter_sampled_max for r in results)}"
        f"{without_slot}); {med('orders_per_s'):.1f} orders/s, wall {med('wall_s'):.1f} s; "
        f"POST p50 {med('post_p50_ms'):.1f} ms p99 {med('post_p99_ms'):.1f} ms; "
        f"POST->confirmed p50 {med('confirm_p50_s'):.2f} s p99 {med('confirm_p99_s'):.2f} s"
        f"{' (medians of runs)' if runs > 1 else ''}; engine log: {errors} errors, {warnings} warnings"
    )


if __name__ == "__main__":
    main()

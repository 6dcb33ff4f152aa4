"""WebSocket fan-out of one API process: subscribers held, memory, commit → client latency, losses.

N subscribers held at once, the API's memory per connection, commit → client delivery
latency, and that every subscriber got every event of its user's orders once, in order.

    .venv/bin/python -m tests.benchmarks.fanout                                  # 1,000 and 10,000, 3 runs
    .venv/bin/python -m tests.benchmarks.fanout --subscribers 10000 --runs 1 --orders-per-user 2

Each run and each N gets a fresh database, Redis prefix and engine (`orderengine run`:
API, worker, scheduler), set up as `tests.benchmarks.flood` sets it up (the defaults of
`.env.example`) with the limits lifted: MOCK_LATENCY_SCALE=0, ORDER_RATE_PER_MIN=0,
WS_MAX_CONNECTIONS_PER_USER=0, QUEUE_MAX_CONCURRENT (`--concurrency`) and
ORDER_PROCESSOR_RATE (`--rate`). Then:

1. warm-up: one market order per user (`--users` users), waited for until it ends;
2. connect: N subscribers on `/ws?userId=` (N / users per user), spread over `--procs`
   client processes (one asyncio loop each, the `websockets` client, open-file limit
   raised to the hard limit), at most `--connect-concurrency` handshakes in flight in
   all. A subscriber counts as held once it has received its user's history (the
   warm-up order, ending in `confirmed`): the server subscribes before it reads history,
   so from then on the shared reader delivers to it. The API process's RSS (VmRSS in
   /proc), open files and TCP connections to Redis are read before and after;
3. deliver: `--orders-per-user` market orders per user are POSTed (at `--submit-rate`
   orders/s); each subscriber reads until each of them has reached a final status. For
   every message: receive time (the client's wall clock) minus the message's `timestamp`
   (the event's `recorded_at`, Postgres' clock on this host) is a delivery latency;
4. check: every subscriber's messages, by `position`, must be exactly its user's
   client-visible events in the log (history and live), each once and in order, and
   their orderId/version/type must match the log.

Beside the latency it prints where it goes, per event: commit → Redis (an independent
reader of the all-orders stream in this process, so the relay's share) and Redis → the
first subscriber (the API's share), and first → last subscriber (the fan-out itself);
the API's CPU per message; and the API's stop-the-world garbage collections (a
`sitecustomize` probe put on the engine's PYTHONPATH logs full and slow collections;
the engine's code is untouched). `--compression none` turns permessage-deflate off on
the client side (browsers and the `websockets` client offer it, uvicorn accepts it).

Per run it prints the figures; at the end the medians of the runs per N. The client
processes share the machine's cores with the engine, Postgres and Redis: their CPU use
and event-loop lag during delivery are printed, and a line says when they saturate.
Only talks to 127.0.0.1; subscribers, orders, runs and every wait are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from adapters.redis_layout import RedisLayout
from domain.order import INTERNAL_EVENTS, TERMINAL
from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.benchmarks.flood import TERMINAL as FINAL_TYPES
from tests.benchmarks.flood import Options as FloodOptions
from tests.benchmarks.flood import make_engine, percentile, summarise_engine_log
from tests.e2e.engine import Engine

MAX_SUBSCRIBERS, MAX_USERS, MAX_ORDERS_PER_USER, MAX_PROCS, MAX_RUNS = 15_000, 1_000, 10, 8, 5
INTERNAL_TYPES = sorted(t.__name__ for t in INTERNAL_EVENTS)
USER_PREFIX = "fan"
CONTROL_POLL_S = 0.02
LAG_PROBE_S = 0.01
GRACE_S = 1.0  # after the last expected message: time for a duplicate to show up
CLOSE_TIMEOUT_S = 2.0
SUBSCRIBE_TIMEOUT_S = 60.0  # one subscriber: handshake + history
POST_TIMEOUT_S = 30.0
SATURATED = 0.9  # a client process busier than this share of one core is called saturated
GC_SLOW_MS = 50.0

# Put on the engine's PYTHONPATH as sitecustomize.py: every engine process appends its
# full (generation 2) and slow collections to FANOUT_GC_DIR/gc-<pid>.log; the engine's
# code is untouched. Python stops the world for a collection: a long one delays every socket.
GC_PROBE = f"""
import gc, os, time

_dir, _started = os.environ.get("FANOUT_GC_DIR"), [0.0]


def _probe(phase, info):
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _started[0]) * 1e3
    if _dir and (info["generation"] == 2 or ms > {GC_SLOW_MS}):
        with open(os.path.join(_dir, f"gc-{{os.getpid()}}.log"), "a") as f:
            f.write(f"{{time.time():.3f}} {{ms:.1f}} {{info['generation']}}\\n")


gc.callbacks.append(_probe)
"""


# -- the API process, seen through /proc ---------------------------------------------


def api_pid(supervisor_pid: int) -> int:
    """The supervisor's child running `api.cli api` (the uvicorn process)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == supervisor_pid and b"api.cli" in argv and argv[-2:] == [b"api", b""]:
            return int(proc.name)
    raise RuntimeError(f"no API child of the supervisor {supervisor_pid}")


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of `pid` in kB: resident now and at its peak."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return "/".join(line.split()[3:5])
    return "?"


def tcp_connections_to(pid: int, port: int) -> int:
    """Established TCP connections of `pid` to `port` (its sockets matched in /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            remote_port, state, inode = int(cols[2].rsplit(":", 1)[1], 16), cols[3], cols[9]
            if remote_port == port and state == "01" and inode in inodes:  # 01 = ESTABLISHED
                count += 1
    return count


@dataclass(frozen=True)
class RedisClients:
    api: int  # the API process's connections to Redis
    server: int  # connected_clients of the whole server (shared with anything else running)

    @staticmethod
    def read(pid: int, redis_url: str) -> RedisClients:
        client = redis.Redis.from_url(redis_url)
        try:
            port = int(client.connection_pool.connection_kwargs.get("port", 6379))
            server = int(client.info("clients")["connected_clients"])
        finally:
            client.close()
        return RedisClients(tcp_connections_to(pid, port), server)


class StreamTail(threading.Thread):
    """An independent reader of the all-orders stream (its own Redis connection, not the
    API's): when each position reached Redis, to split commit → client into the relay's
    part (commit → Redis) and the API's (Redis → first subscriber)."""

    def __init__(self, redis_url: str, prefix: str, after: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.key, self.last_id = RedisLayout(prefix).all_orders, f"{after}-0"
        self.seen_at: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                reply: Any = self.client.xread({self.key: self.last_id}, block=200, count=1000)
                now = time.time()
                for _, entries in reply or []:
                    for entry_id, _ in entries:
                        self.last_id = entry_id
                        self.seen_at[int(entry_id.split("-")[0])] = now
        finally:
            self.client.close()


@dataclass(frozen=True)
class GcPauses:
    """The API's collections (generation 2, or any slower than GC_SLOW_MS) within a window."""

    count: int = 0
    max_ms: float = 0.0
    total_ms: float = 0.0

    @staticmethod
    def read(gc_dir: Path, pid: int, start: float, end: float) -> GcPauses:
        path = gc_dir / f"gc-{pid}.log"
        if not path.exists():
            return GcPauses()
        pauses = []
        for line in path.read_text().splitlines():
            ended, ms, _ = line.split()
            if float(ended) >= start and float(ended) - float(ms) / 1e3 <= end:
                pauses.append(float(ms))
        return GcPauses(len(pauses), max(pauses, default=0.0), sum(pauses))

    def text(self) -> str:
        return f"{self.count} (max {self.max_ms:.0f} ms, total {self.total_ms / 1e3:.1f} s)"


# -- client processes ------------------------------------------------------------------


@dataclass(frozen=True)
class ClientJob:
    index: int
    ws_base: str
    users: list[tuple[str, int]]  # (userId, subscribers of that user in this process)
    history_finals: int  # final statuses in each user's history (the warm-up orders)
    live_finals: int  # final statuses expected live (the measured orders)
    live_after: int  # positions above this are live deliveries (latency is measured on them)
    concurrency: int  # handshakes (+ history) in flight in this process
    compression: str | None
    connect_timeout_s: float
    deliver_timeout_s: float


@dataclass
class Subscriber:
    user: str
    positions: list[int] = field(default_factory=list)
    finals: int = 0
    ready: bool = False
    error: str | None = None


@dataclass
class ReadyReport:
    index: int
    held: int
    errors: Counter[str]
    wall_s: float
    cpu_s: float
    nofile: str


@dataclass
class DoneReport:
    index: int
    subscribers: list[tuple[str, list[int], bool, str | None]]  # user, positions, ready, error
    # position -> (orderId, version, type) as this process saw it; conflicts counted
    seen: dict[int, tuple[str, int, str]]
    conflicts: int
    latencies: dict[int, list[float]]  # live position -> latency of each delivery (s)
    bad_messages: int
    finished: int  # subscribers that saw every expected final status
    wall_s: float  # from "go" until all finished (or the deadline)
    cpu_s: float
    lag_max_ms: float
    lag_p99_ms: float


def raise_nofile() -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"{soft}/{hard}"


def client_process(job: ClientJob, conn: Connection) -> None:
    """Entry point of one client process: hold its subscribers, report over `conn`."""
    nofile = raise_nofile()
    try:
        asyncio.run(ClientRun(job, conn, nofile).run())
    finally:
        conn.close()


class ClientRun:
    def __init__(self, job: ClientJob, conn: Connection, nofile: str) -> None:
        self.job, self.conn, self.nofile = job, conn, nofile
        self.subs = [Subscriber(user) for user, count in job.users for _ in range(count)]
        self.sockets: list[ClientConnection] = []
        self.seen: dict[int, tuple[str, int, str]] = {}
        self.conflicts = self.bad_messages = self.finished = 0
        self.latencies: defaultdict[int, list[float]] = defaultdict(list)
        self.all_finished = asyncio.Event()
        self.go = asyncio.Event()
        self.stop = asyncio.Event()
        self.lags: list[float] = []
        self.held = len(self.subs)  # until the connect phase ends

    async def run(self) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        control = asyncio.create_task(self.control())
        sem = asyncio.Semaphore(self.job.concurrency)
        tasks = [asyncio.create_task(self.subscriber(sub, sem)) for sub in self.subs]
        try:
            await self.wait_ready(tasks, started)
            errors = Counter(sub.error for sub in self.subs if sub.error)
            held = self.held = sum(sub.ready for sub in self.subs)
            ready_wall, ready_cpu = time.perf_counter() - started, time.process_time() - cpu
            self.conn.send(ReadyReport(self.job.index, held, errors, ready_wall, ready_cpu, self.nofile))
            await self.wait_for(self.go, self.job.connect_timeout_s + self.job.deliver_timeout_s)
            go_at, go_cpu = time.perf_counter(), time.process_time()
            probe = asyncio.create_task(self.probe_lag())
            if self.finished < held:
                done = asyncio.create_task(self.all_finished.wait())
                stop = asyncio.create_task(self.stop.wait())
                await asyncio.wait(
                    {done, stop}, timeout=self.job.deliver_timeout_s, return_when=asyncio.FIRST_COMPLETED
                )
                done.cancel()
                stop.cancel()
            deliver_wall, deliver_cpu = time.perf_counter() - go_at, time.process_time() - go_cpu
            await asyncio.sleep(GRACE_S)
            probe.cancel()
            lags = sorted(self.lags)
            self.conn.send(
                DoneReport(
                    index=self.job.index,
                    subscribers=[(s.user, s.positions, s.ready, s.error) for s in self.subs],
                    seen=self.seen,
                    conflicts=self.conflicts,
                    latencies=dict(self.latencies),
                    bad_messages=self.bad_messages,
                    finished=self.finished,
                    wall_s=deliver_wall,
                    cpu_s=deliver_cpu,
                    lag_max_ms=(lags[-1] if lags else 0.0) * 1e3,
                    lag_p99_ms=percentile(lags, 0.99) * 1e3 if lags else 0.0,
                )
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            control.cancel()
            await self.close_all()

    async def wait_ready(self, tasks: list[asyncio.Task[None]], started: float) -> None:
        """Until every subscriber is held or has failed (bounded by the connect timeout)."""
        deadline = started + self.job.connect_timeout_s
        while time.perf_counter() < deadline and not self.stop.is_set():
            if all(sub.ready or sub.error for sub in self.subs):
                return
            await asyncio.sleep(0.05)
        for sub, task in zip(self.subs, tasks, strict=True):
            if not sub.ready and not sub.error:
                task.cancel()
                sub.error = f"not subscribed within {self.job.connect_timeout_s:.0f} s"

    async def wait_for(self, event: asyncio.Event, timeout: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    async def control(self) -> None:
        """The parent's messages: "go" (orders are being submitted), "stop" (give up)."""
        while True:
            while self.conn.poll():
                if self.conn.recv() == "stop":
                    self.stop.set()
                self.go.set()
            await asyncio.sleep(CONTROL_POLL_S)

    async def probe_lag(self) -> None:
        """How late this loop wakes up: a client that cannot keep up shows here."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            self.lags.append(max(0.0, loop.time() - before - LAG_PROBE_S))

    async def subscriber(self, sub: Subscriber, sem: asyncio.Semaphore) -> None:
        url = f"{self.job.ws_base}/ws?userId={sub.user}"
        try:
            async with sem:  # held until subscribed: bounds the handshakes and history reads in flight
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                    ws = await connect(
                        url,
                        proxy=None,
                        compression=self.job.compression,
                        ping_interval=None,  # the server pings; the client answers
                        close_timeout=CLOSE_TIMEOUT_S,
                        max_queue=None,
                    )
                    self.sockets.append(ws)
                    while sub.finals < self.job.history_finals:
                        self.receive(sub, await ws.recv())
            sub.ready = True
            expected = self.job.history_finals + self.job.live_finals
            while True:
                self.receive(sub, await ws.recv())
                if sub.finals == expected:
                    self.finished += 1
                    if self.finished >= self.held:
                        self.all_finished.set()
        except asyncio.CancelledError:
            raise
        except ConnectionClosed as exc:
            sub.error = f"closed {exc.rcvd.code if exc.rcvd else 'without a close frame'}"
        except Exception as exc:
            sub.error = f"{type(exc).__name__}: {exc}"[:120]

    def receive(self, sub: Subscriber, raw: str | bytes) -> None:
        received = time.time()
        try:
            message: dict[str, Any] = json.loads(raw)
            position, order_id, version = int(message["position"]), message["orderId"], message["version"]
            content = (str(order_id), int(version), str(message["type"]))
            status = message["status"]
            committed = datetime.fromisoformat(message["timestamp"]).timestamp()
        except (ValueError, KeyError, TypeError):
            self.bad_messages += 1
            return
        sub.positions.append(position)
        if status in TERMINAL:
            sub.finals += 1
        known = self.seen.setdefault(position, content)
        if known != content:
            self.conflicts += 1
        if position > self.job.live_after:
            self.latencies[position].append(received - committed)

    async def close_all(self) -> None:
        sem = asyncio.Semaphore(200)

        async def close(ws: ClientConnection) -> None:
            async with sem:
                await ws.close()

        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(close(ws) for ws in self.sockets), return_exceptions=True)
        except TimeoutError:
            pass


# -- the parent: engine, orders, checks -------------------------------------------------


@dataclass(frozen=True)
class Options:
    users: int
    orders_per_user: int
    procs: int
    connect_concurrency: int
    submit_rate: float
    compression: str | None
    rate: int
    concurrency: int
    ping_s: str


@dataclass
class RunResult:
    n: int
    held: int = 0
    connect_s: float = math.nan
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    hwm_kb: int = 0
    fds_before: int = 0
    fds_after: int = 0
    redis_before: RedisClients = RedisClients(0, 0)
    redis_after: RedisClients = RedisClients(0, 0)
    redis_end: RedisClients = RedisClients(0, 0)
    latencies_ms: list[float] = field(default_factory=list)  # every live delivery: commit → client
    spread_ms: list[float] = field(default_factory=list)  # per event: last − first delivery
    first_ms: list[float] = field(default_factory=list)  # per event: commit → first delivery
    relay_ms: list[float] = field(default_factory=list)  # per event: commit → in Redis (own reader)
    hub_ms: list[float] = field(default_factory=list)  # per event: in Redis → first delivery
    slowest: list[str] = field(default_factory=list)  # the events delivered last, for a look
    deliveries_expected: int = 0
    finished: int = 0
    problems: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    deliver_s: float = math.nan
    api_cpu: float = math.nan  # share of one core during delivery
    api_cpu_s: float = math.nan  # CPU seconds the API used during delivery (the POSTs too)
    machine_busy: float = math.nan  # share of all cores during delivery
    client_cpu: list[float] = field(default_factory=list)
    client_lag_max_ms: float = 0.0
    nofile: str = "?"
    gc_connect: GcPauses = GcPauses()
    gc_deliver: GcPauses = GcPauses()

    @property
    def rss_per_conn_kb(self) -> float:
        return (self.rss_after_kb - self.rss_before_kb) / max(self.held, 1)

    def q_ms(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def line(self) -> str:
        def pct(values: list[float]) -> str:
            return f"p50 {percentile(values, 0.5):.1f} p99 {percentile(values, 0.99):.1f} ms"

        clients = "/".join(f"{c * 100:.0f}" for c in self.client_cpu)
        return (
            f"N={self.n}: held {self.held}/{self.n} (connect {self.connect_s:.1f} s); API RSS "
            f"{self.rss_before_kb / 1024:.0f} → {self.rss_after_kb / 1024:.0f} MiB = "
            f"{self.rss_per_conn_kb:.1f} kB/conn (peak {self.hwm_kb / 1024:.0f} MiB), fds "
            f"{self.fds_before} → {self.fds_after}; API→Redis connections {self.redis_before.api} → "
            f"{self.redis_after.api} (after delivery {self.redis_end.api}), Redis connected_clients "
            f"{self.redis_before.server} → {self.redis_after.server}\n"
            f"  delivery: {len(self.latencies_ms)}/{self.deliveries_expected} messages, commit→client "
            f"{pct(self.latencies_ms)} max {self.q_ms(1.0):.1f} ms; {self.finished} subscribers saw every "
            f"order end in {self.deliver_s:.1f} s ({len(self.latencies_ms) / self.deliver_s:.0f} messages/s, "
            f"API CPU {self.api_cpu_s / max(len(self.latencies_ms), 1) * 1e6:.0f} µs per message)\n"
            f"  per event: commit→first subscriber {pct(self.first_ms)} = commit→Redis {pct(self.relay_ms)} "
            f"+ Redis→first subscriber {pct(self.hub_ms)}; first→last subscriber {pct(self.spread_ms)}\n"
            f"  CPU during delivery: API {self.api_cpu * 100:.0f}% of a core, machine "
            f"{self.machine_busy * 100:.0f}% of {os.cpu_count()} cores, client processes {clients}% "
            f"(event-loop lag max {self.client_lag_max_ms:.0f} ms); client open-file limit {self.nofile}\n"
            f"  API garbage collections (full, or > {GC_SLOW_MS:.0f} ms), each stopping the process: "
            f"while connecting {self.gc_connect.text()}, during delivery {self.gc_deliver.text()}"
        )


def assign(n: int, opts: Options) -> list[list[tuple[str, int]]]:
    """Subscriber i watches user i % users and lives in process (i // users) % procs: each
    user's subscribers are spread over every process."""
    per_proc: list[Counter[str]] = [Counter() for _ in range(opts.procs)]
    for i in range(n):
        per_proc[(i // opts.users) % opts.procs][f"{USER_PREFIX}-{i % opts.users:04d}"] += 1
    return [sorted(c.items()) for c in per_proc]


async def submit(base_url: str, users: list[str], per_user: int, rate: float) -> Counter[str]:
    """POST `per_user` market orders for each user, at `rate` orders/s (0: as fast as 20 clients can)."""
    errors: Counter[str] = Counter()
    bodies = [
        {"userId": u, "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5"}
        for _ in range(per_user)
        for u in users
    ]
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    sem = asyncio.Semaphore(20)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=POST_TIMEOUT_S, limits=limits, trust_env=False
    ) as client:
        start = time.perf_counter()

        async def post(i: int, body: dict[str, str]) -> None:
            if rate > 0:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            async with sem:
                try:
                    response = await client.post("/api/orders/execute", json=body)
                except httpx.HTTPError as exc:
                    errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    return
                if response.status_code != 200:
                    errors[f"HTTP {response.status_code}: {response.text[:100]}"] += 1

        await asyncio.gather(*(post(i, b) for i, b in enumerate(bodies)))
    return errors


def wait_orders_ended(db: psycopg.Connection[Any], orders: int, timeout: float) -> bool:
    """Poll the log until `orders` orders have a final event; False at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT count(DISTINCT stream_id) FROM events WHERE type = ANY(%s)", (list(FINAL_TYPES),)
        ).fetchone()
        if row and int(row[0]) >= orders:
            return True
        time.sleep(0.2)
    return False


def user_events(
    db: psycopg.Connection[Any],
) -> tuple[dict[str, list[int]], dict[int, tuple[str, int, str]], Counter[str]]:
    """From the log: each user's client-visible positions in order, each position's
    (orderId, version, type), and the orders' final event types."""
    rows = db.execute(
        "SELECT e.position, e.stream_id, e.version, e.type, o.data->>'user_id' FROM events e "
        "JOIN events o ON o.stream_id = e.stream_id AND o.version = 1 "
        "WHERE e.type <> ALL(%s) ORDER BY e.position",
        (INTERNAL_TYPES,),
    ).fetchall()
    by_user: defaultdict[str, list[int]] = defaultdict(list)
    content: dict[int, tuple[str, int, str]] = {}
    last: dict[str, str] = {}
    for position, stream_id, version, type_, user in rows:
        by_user[str(user)].append(int(position))
        content[int(position)] = (str(stream_id), int(version), str(type_))
        last[str(stream_id)] = str(type_)
    return dict(by_user), content, Counter(last.values())


def check(
    reports: list[DoneReport], expected: dict[str, list[int]], content: dict[int, tuple[str, int, str]]
) -> list[str]:
    """Problems found in what the subscribers received (each held subscriber must have got
    exactly its user's client-visible events, each once, in position order)."""
    problems: Counter[str] = Counter()
    for report in reports:
        for user, positions, ready, _ in report.subscribers:
            want = expected.get(user, [])
            if not ready or positions == want:
                continue
            got = set(positions)
            if len(got) < len(positions):
                problems["duplicates"] += 1
            if positions != sorted(positions):
                problems["out of order"] += 1
            if set(want) - got:
                problems["missing events"] += 1
            if got - set(want):
                problems["events of other users"] += 1
        wrong = sum(1 for p, c in report.seen.items() if content.get(p) != c)
        if wrong:
            problems["orderId/version/type differ from the log"] += wrong
        if report.conflicts:
            problems["one position, different contents"] += report.conflicts
        if report.bad_messages:
            problems["messages without orderId/version/type/position/timestamp"] += report.bad_messages
    return [f"{n} subscribers: {what}" for what, n in problems.items()]


def receive(
    conns: list[Connection], kind: type[ReadyReport] | type[DoneReport], timeout: float
) -> dict[int, Any]:
    """One message of `kind` from each pipe (by job index), until `timeout`."""
    got: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    pending = list(conns)
    while pending and time.monotonic() < deadline:
        for conn in wait(pending, timeout=max(0.0, deadline - time.monotonic())):
            assert isinstance(conn, Connection)
            try:
                message: Any = conn.recv()
            except EOFError:
                pending.remove(conn)
                continue
            if isinstance(message, kind):
                got[int(message.index)] = message
                pending.remove(conn)
    return got


def measure(
    engine: Engine, db: psycopg.Connection[Any], redis_url: str, n: int, opts: Options, gc_dir: Path
) -> RunResult:
    result = RunResult(n)
    users = [f"{USER_PREFIX}-{i:04d}" for i in range(opts.users)]
    errors = asyncio.run(submit(engine.base_url, users, 1, 0))  # warm-up: each user's history
    if errors or not wait_orders_ended(db, opts.users, 120):
        raise RuntimeError(f"warm-up orders did not all end: {errors.most_common(3)}")
    row = db.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
    live_after = int(row[0]) if row else 0
    assert engine.proc is not None
    pid = api_pid(engine.proc.pid)
    result.rss_before_kb, _ = memory_kb(pid)
    result.fds_before = open_fds(pid)
    result.redis_before = RedisClients.read(pid, redis_url)

    total_orders = opts.users * opts.orders_per_user
    connect_timeout = 60 + n * 0.03
    deliver_timeout = 60 + total_orders * 0.5 + (total_orders / opts.submit_rate if opts.submit_rate else 0)
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for index, assigned in enumerate(assign(n, opts)):
        job = ClientJob(
            index=index,
            ws_base=engine.base_url.replace("http://", "ws://"),
            users=assigned,
            history_finals=1,
            live_finals=opts.orders_per_user,
            live_after=live_after,
            concurrency=max(1, opts.connect_concurrency // opts.procs),
            compression=opts.compression,
            connect_timeout_s=connect_timeout,
            deliver_timeout_s=deliver_timeout,
        )
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=client_process, args=(job, child_end), daemon=True)
        proc.start()
        child_end.close()
        pipes.append(parent_end)
        procs.append(proc)
    try:
        started = time.time()
        ready: dict[int, ReadyReport] = receive(pipes, ReadyReport, connect_timeout + 30)
        result.connect_s = time.time() - started
        result.gc_connect = GcPauses.read(gc_dir, pid, started, time.time())
        result.held = sum(rr.held for rr in ready.values())
        result.nofile = ",".join(sorted({rr.nofile for rr in ready.values()}))
        for rr in ready.values():
            result.errors.update(rr.errors)
        if len(ready) < len(procs):
            result.problems.append(f"{len(procs) - len(ready)} client processes never reported")
        result.rss_after_kb, _ = memory_kb(pid)
        result.fds_after = open_fds(pid)
        result.redis_after = RedisClients.read(pid, redis_url)

        tail = StreamTail(redis_url, engine.prefix, live_after)
        tail.start()
        go_at = time.time()
        for conn in pipes:
            conn.send("go")
        busy0, total0 = machine_jiffies()
        api0, t0 = cpu_seconds(pid), time.perf_counter()
        post_errors = asyncio.run(submit(engine.base_url, users, opts.orders_per_user, opts.submit_rate))
        if post_errors:
            result.problems.append(f"POST errors: {post_errors.most_common(3)}")
        done: dict[int, DoneReport] = receive(pipes, DoneReport, deliver_timeout + 30)
        elapsed = time.perf_counter() - t0
        result.gc_deliver = GcPauses.read(gc_dir, pid, go_at, time.time())
        busy1, total1 = machine_jiffies()
        result.api_cpu_s = cpu_seconds(pid) - api0
        result.api_cpu = result.api_cpu_s / elapsed
        result.machine_busy = (busy1 - busy0) / max(total1 - total0, 1)
        _, result.hwm_kb = memory_kb(pid)
        result.redis_end = RedisClients.read(pid, redis_url)
        tail.done.set()
        tail.join(timeout=5)
        if len(done) < len(procs):
            result.problems.append(f"{len(procs) - len(done)} client processes sent no results")
    finally:
        for conn in pipes:
            try:
                conn.send("stop")
            except OSError:
                pass
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
                proc.join()

    reports = list(done.values())
    expected, content, finals = user_events(db)
    if finals != Counter({"OrderConfirmed": total_orders + opts.users}):
        result.problems.append(f"orders ended as {dict(finals)}")
    result.problems += check(reports, expected, content)
    result.deliveries_expected = sum(
        len([p for p in expected.get(u, []) if p > live_after])
        for r in reports
        for u, _, ready, _ in r.subscribers
        if ready
    )
    result.finished = sum(r.finished for r in reports)
    result.deliver_s = max((r.wall_s for r in reports), default=math.nan)
    by_position: defaultdict[int, list[float]] = defaultdict(list)
    for r in reports:
        for position, values in r.latencies.items():
            by_position[position].extend(values)
    result.latencies_ms = sorted(v * 1e3 for values in by_position.values() for v in values)
    result.spread_ms = sorted((max(v) - min(v)) * 1e3 for v in by_position.values())
    result.first_ms = sorted(min(v) * 1e3 for v in by_position.values())
    committed: dict[int, float] = dict(
        db.execute(
            "SELECT position, extract(epoch FROM recorded_at)::float8 FROM events WHERE position > %s",
            (live_after,),
        ).fetchall()
    )
    in_redis = {p: (tail.seen_at[p] - committed[p]) * 1e3 for p in by_position if p in tail.seen_at}
    result.relay_ms = sorted(in_redis.values())
    result.hub_ms = sorted(min(by_position[p]) * 1e3 - ms for p, ms in in_redis.items())
    worst = sorted(by_position, key=lambda p: max(by_position[p]), reverse=True)[:5]
    result.slowest = [
        f"#{p} {content[p][2]} v{content[p][1]} committed at +{committed[p] - go_at:.1f} s: in Redis "
        f"{in_redis.get(p, math.nan):.0f} ms, first "
        f"{min(by_position[p]) * 1e3:.0f} ms, last {max(by_position[p]) * 1e3:.0f} ms"
        for p in worst
        if p in content
    ]
    result.client_cpu = [r.cpu_s / r.wall_s for r in reports if r.wall_s and any(s[2] for s in r.subscribers)]
    result.client_lag_max_ms = max((r.lag_max_ms for r in reports), default=0.0)
    return result


def one_run(n: int, opts: Options) -> RunResult:
    with scratch_servers() as (database_url, redis_url):
        flood_opts = FloodOptions(
            orders=opts.users * (opts.orders_per_user + 1),
            scale="0",
            rate=opts.rate,
            concurrency=opts.concurrency,
            idle_ms=100,
            clients=1,
        )
        engine = make_engine(database_url, redis_url, flood_opts)
        gc_dir = Path(tempfile.mkdtemp(prefix="fanout-gc-"))
        (gc_dir / "sitecustomize.py").write_text(GC_PROBE)
        engine.env.update(
            ORDER_RATE_PER_MIN="0",
            WS_MAX_CONNECTIONS_PER_USER="0",
            WS_PING_INTERVAL_S=opts.ping_s,
            FANOUT_GC_DIR=str(gc_dir),
            PYTHONPATH=os.pathsep.join(filter(None, [str(gc_dir), os.environ.get("PYTHONPATH")])),
        )
        # One connection for the whole run, opened first: the shared server's slots run out
        # when other work is using it, and a run should not fail halfway for want of one.
        with psycopg.connect(database_url, autocommit=True) as db:
            engine.start()
            try:
                return measure(engine, db, redis_url, n, opts, gc_dir)
            finally:
                engine.stop()
                shutil.rmtree(gc_dir, ignore_errors=True)
                print("  " + summarise_engine_log(engine.log_path, top=3).text, flush=True)
                delete_prefix(redis_url, engine.prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscribers", default="1000,10000", help=f"comma-separated N (each at most {MAX_SUBSCRIBERS})"
    )
    parser.add_argument("--runs", type=int, default=3, help=f"runs per N (max {MAX_RUNS})")
    parser.add_argument(
        "--users", type=int, default=100, help=f"users the subscribers watch (max {MAX_USERS})"
    )
    parser.add_argument(
        "--orders-per-user", type=int, default=1, help=f"measured orders per user (max {MAX_ORDERS_PER_USER})"
    )
    parser.add_argument("--procs", type=int, default=4, help=f"client processes (max {MAX_PROCS})")
    parser.add_argument("--connect-concurrency", type=int, default=200, help="handshakes in flight in all")
    parser.add_argument("--submit-rate", type=float, default=20, help="orders/s POSTed (0: all at once)")
    parser.add_argument(
        "--compression", choices=("deflate", "none"), default="deflate", help="permessage-deflate offered"
    )
    parser.add_argument("--rate", type=int, default=1_000_000, help="ORDER_PROCESSOR_RATE")
    parser.add_argument("--concurrency", type=int, default=1000, help="QUEUE_MAX_CONCURRENT")
    parser.add_argument("--ping-s", default="20", help="WS_PING_INTERVAL_S")
    args = parser.parse_args()
    ns = [min(max(int(x), 1), MAX_SUBSCRIBERS) for x in args.subscribers.split(",") if x.strip()]
    runs = min(max(args.runs, 1), MAX_RUNS)
    opts = Options(
        users=min(max(args.users, 1), MAX_USERS),
        orders_per_user=min(max(args.orders_per_user, 1), MAX_ORDERS_PER_USER),
        procs=min(max(args.procs, 1), MAX_PROCS),
        connect_concurrency=max(args.connect_concurrency, 1),
        submit_rate=max(args.submit_rate, 0.0),
        compression=None if args.compression == "none" else args.compression,
        rate=max(args.rate, 1),
        concurrency=max(args.concurrency, 1),
        ping_s=args.ping_s,
    )
    nofile = raise_nofile()  # inherited by the engine's processes
    print(
        f"fanout: N={ns}, {opts.users} users, {opts.orders_per_user} order(s)/user at "
        f"{opts.submit_rate or 'max'} orders/s, {opts.procs} client processes on a "
        f"{os.cpu_count()}-core machine (shared with the engine, Postgres and Redis), compression "
        f"{opts.compression}, open files {nofile}",
        flush=True,
    )
    results: dict[int, list[RunResult]] = defaultdict(list)
    for run in range(runs):
        for n in ns:
            result = one_run(n, opts)
            results[n].append(result)
            print(f"run {run + 1} {result.line()}", flush=True)
            print(f"  slowest events: {'; '.join(result.slowest)}", flush=True)
            if result.errors:
                print(f"  connect errors: {result.errors.most_common(5)}", flush=True)
            for problem in result.problems:
                print(f"  ! {problem}", flush=True)
            busy = [f"{c * 100:.0f}%" for c in result.client_cpu if c > SATURATED]
            if busy:
                print(f"  ! client processes saturated ({', '.join(busy)} of a core each)", flush=True)

    for n in ns:
        rs = results[n]

        def med(values: list[float]) -> float:
            return float(statistics.median(values))

        print(
            f"fanout N={n} ({len(rs)} run(s), medians): held {med([r.held for r in rs]):.0f}/{n}, "
            f"API RSS {med([r.rss_per_conn_kb for r in rs]):.1f} kB/conn, commit→client "
            f"p50 {med([r.q_ms(0.5) for r in rs]):.1f} ms p99 {med([r.q_ms(0.99) for r in rs]):.1f} ms "
            f"max {med([r.q_ms(1.0) for r in rs]):.1f} ms, API→Redis connections "
            f"{med([r.redis_before.api for r in rs]):.0f} → {med([r.redis_after.api for r in rs]):.0f}, "
            f"problems {sum(len(r.problems) for r in rs)}, connect errors "
            f"{sum(sum(r.errors.values()) for r in rs)}",
            flush=True,
        )


if __name__ == "__main__":
    main()

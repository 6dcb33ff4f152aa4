"""Prometheus metrics: their definitions, the exposition, and scrape-time readings.

Every engine process (API, worker, scheduler) imports this module and updates the
metrics it owns; the API's `GET /metrics` shows them all. Under the supervisor each
process has `PROMETHEUS_MULTIPROC_DIR` in its environment before prometheus_client
is imported, so values go to per-process files in that directory and the API merges
them at scrape time (prometheus_client's multiprocess mode). A process started alone
without it keeps them in memory (single-process mode) and shows only its own.

State that lives in Postgres or Redis (log lag, open orders, queue depth) is read
when scraped, in the API process, not pushed by the process that changes it: a value
read at scrape time is never stale, and a dead process cannot leave one behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "orderengine"

# Single-process exposition reads this registry; in multiprocess mode the values are
# also in the files, which are what the API merges and shows.
REGISTRY = CollectorRegistry()

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Limit and sniper orders may wait minutes or hours for their price or launch.
ORDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86_400.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

# -- lifecycle, counted by the orders projection (see projections/orders_projection.py) --
ORDERS_ACCEPTED = Counter(
    f"{PREFIX}_orders_accepted", "Orders recorded as pending.", ["order_type"], registry=REGISTRY
)
ORDERS_CONFIRMED = Counter(
    f"{PREFIX}_orders_confirmed", "Orders confirmed on chain.", ["order_type", "dex"], registry=REGISTRY
)
ORDERS_FAILED = Counter(
    f"{PREFIX}_orders_failed",
    "Orders that ended failed, by the step that failed.",
    ["order_type", "step"],
    registry=REGISTRY,
)
RETRIES = Counter(
    f"{PREFIX}_retries", "Step attempts that failed and were retried.", ["step"], registry=REGISTRY
)
ORDER_LATENCY = Histogram(
    f"{PREFIX}_order_end_to_end_seconds",
    "From pending to confirmed, by the log's timestamps.",
    ["order_type"],
    buckets=ORDER_BUCKETS,
    registry=REGISTRY,
)

# -- worker --
STEP_DURATION = Histogram(
    f"{PREFIX}_step_duration_seconds",
    "One execution of a worker step, by step and outcome (ok, retry, deferred, refused, error).",
    ["step", "outcome"],
    buckets=STEP_BUCKETS,
    registry=REGISTRY,
)

# -- API --
HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "HTTP request handling time, by method and route template.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
# livesum: the sum over live processes; the supervisor marks a dead process's file dead.
WS_CONNECTIONS = Gauge(
    f"{PREFIX}_websocket_connections",
    "Open WebSocket connections.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

# -- scheduler --
SCHEDULER_LEADER = Gauge(
    f"{PREFIX}_scheduler_leader",
    "Schedulers running the log followers (1 when healthy).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)


def websocket_opened() -> None:
    WS_CONNECTIONS.inc()


def websocket_closed() -> None:
    WS_CONNECTIONS.dec()


@contextmanager
def websocket_connection() -> Iterator[None]:
    """Counts an open WebSocket for as long as the block runs, however it ends."""
    websocket_opened()
    try:
        yield
    finally:
        websocket_closed()


def observe_step(step: str, outcome: str, seconds: float) -> None:
    STEP_DURATION.labels(step=step, outcome=outcome).observe(seconds)


def observe_http_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_DURATION.labels(method=method, route=route).observe(seconds)


# -- exposition --


def multiprocess_dir() -> str | None:
    """The shared metrics directory when this process runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class _Scrape:
    """What one scrape shows: the processes' metrics, then the readings taken for it."""

    def __init__(self, base: Collector, readings: Iterable[Metric]) -> None:
        self._base = base
        self._readings = list(readings)

    def collect(self) -> Iterator[Metric]:
        yield from self._base.collect()
        yield from self._readings


def render(
    extra: Iterable[Metric] = (), *, accept: str = "", directory: str | None = None
) -> tuple[bytes, str]:
    """The exposition body and its content type: this process's metrics (or, in
    multiprocess mode, every process's, merged from `directory`) plus `extra`."""
    directory = directory if directory is not None else multiprocess_dir()
    # registry=None: a collector of its own per scrape, reading the files afresh.
    base: Collector = MultiProcessCollector(None, path=directory) if directory else REGISTRY
    encoder, content_type = choose_encoder(accept)
    return encoder(_Scrape(base, extra)), content_type


# -- scrape-time readings (API process) --

Pool = AsyncConnectionPool[AsyncConnection[Any]]

# The statuses of an order that has not ended (domain.order.TERMINAL are the others).
OPEN_STATUSES = ("pending", "waiting", "routing", "building", "submitted")

_LAG = """
SELECT f.name,
       head.position - coalesce(c.position, 0),
       coalesce(extract(epoch FROM clock_timestamp() - (
           SELECT e.recorded_at FROM events e WHERE e.position > coalesce(c.position, 0)
           ORDER BY e.position LIMIT 1)), 0)
FROM unnest(%s::text[]) AS f(name)
LEFT JOIN projection_checkpoints c ON c.name = f.name
CROSS JOIN (SELECT coalesce(max(position), 0) AS position FROM events) AS head
"""

_OPEN_ORDERS = "SELECT status, count(*) FROM orders WHERE status = ANY(%s) GROUP BY status"


async def read_follower_lag(pool: Pool, followers: Sequence[str]) -> dict[str, tuple[int, float]]:
    """Per log follower: events in the log after its checkpoint, and the age in seconds of
    the oldest of them (0 when caught up). Index lookups only: cheap on every scrape."""
    async with pool.connection(timeout=2) as conn:
        cur = await conn.execute(_LAG, (list(followers),))
        return {name: (max(int(events), 0), float(seconds)) for name, events, seconds in await cur.fetchall()}


async def read_open_orders(pool: Pool) -> dict[str, int]:
    """Orders not yet ended, by status, from the orders projection (`orders_status` index)."""
    async with pool.connection(timeout=2) as conn:
        cur = await conn.execute(_OPEN_ORDERS, (list(OPEN_STATUSES),))
        counts = {status: int(n) for status, n in await cur.fetchall()}
    return {status: counts.get(status, 0) for status in OPEN_STATUSES}


async def read_queue_depths(
    client: aioredis.Redis, namespace: str, queues: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Per Dramatiq queue: messages `ready` (enqueued, not fetched), `unacked` (fetched by
    a worker, running or prefetched), `delayed` (retries and deferrals waiting for their
    time) and `dead` (dead-lettered). Dramatiq's RedisBroker layout, under `namespace`:
    `{ns}:{q}` list of ids waiting, `{ns}:{q}.msgs` hash of every message not yet acked,
    the same two for the delay queue `{q}.DQ`, and the `{ns}:{q}.XQ` sorted set."""
    pipe = client.pipeline(transaction=True)  # MULTI: one consistent snapshot
    for queue in queues:
        base = f"{namespace}:{queue}"
        pipe.llen(base)
        pipe.hlen(f"{base}.msgs")
        pipe.hlen(f"{base}.DQ.msgs")
        pipe.zcard(f"{base}.XQ")
    values = [int(v) for v in await pipe.execute()]
    depths = {}
    for i, queue in enumerate(queues):
        ready, pending, delayed, dead = values[4 * i : 4 * i + 4]
        depths[queue] = {"ready": ready, "unacked": max(pending - ready, 0), "delayed": delayed, "dead": dead}
    return depths


def lag_families(lag: dict[str, tuple[int, float]], outbox: str, projections: Sequence[str]) -> list[Metric]:
    outbox_events = GaugeMetricFamily(
        f"{PREFIX}_outbox_lag_events", "Events in the log not yet relayed to Redis streams."
    )
    outbox_seconds = GaugeMetricFamily(
        f"{PREFIX}_outbox_lag_seconds", "Age of the oldest event not yet relayed (0 when caught up)."
    )
    if outbox in lag:
        outbox_events.add_metric([], lag[outbox][0])
        outbox_seconds.add_metric([], lag[outbox][1])
    projection_events = GaugeMetricFamily(
        f"{PREFIX}_projection_lag_events",
        "Events in the log not yet applied to a read model.",
        labels=["projection"],
    )
    projection_seconds = GaugeMetricFamily(
        f"{PREFIX}_projection_lag_seconds",
        "Age of the oldest event not yet applied to a read model (0 when caught up).",
        labels=["projection"],
    )
    for name in projections:
        if name in lag:
            projection_events.add_metric([name], lag[name][0])
            projection_seconds.add_metric([name], lag[name][1])
    return [outbox_events, outbox_seconds, projection_events, projection_seconds]


def open_order_families(open_orders: dict[str, int]) -> list[Metric]:
    in_flight = GaugeMetricFamily(
        f"{PREFIX}_orders_in_flight", "Orders accepted and not yet ended, by status.", labels=["status"]
    )
    for status, count in open_orders.items():
        in_flight.add_metric([status], count)
    return [in_flight]


def slot_families(slots_in_use: int) -> list[Metric]:
    return [
        GaugeMetricFamily(
            f"{PREFIX}_execution_slots_in_use",
            "Orders holding a slot of the deployment-wide in-flight limit (QUEUE_MAX_CONCURRENT).",
            value=slots_in_use,
        )
    ]


def queue_families(depths: dict[str, dict[str, int]]) -> list[Metric]:
    depth = GaugeMetricFamily(
        f"{PREFIX}_queue_depth", "Dramatiq messages by queue and state.", labels=["queue", "state"]
    )
    for queue, states in depths.items():
        for state, count in states.items():
            depth.add_metric([queue, state], count)
    return [depth]


def source_families(up: dict[str, bool]) -> list[Metric]:
    family = GaugeMetricFamily(
        f"{PREFIX}_metrics_source_up",
        "Whether this scrape could read the source (0: its gauges are missing).",
        labels=["source"],
    )
    for source, ok in up.items():
        family.add_metric([source], 1 if ok else 0)
    return [family]

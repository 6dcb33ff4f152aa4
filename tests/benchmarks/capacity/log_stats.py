"""What the event log says about a run: when every accepted order has ended, orders/s,
the gaps between an order's consecutive events, and whether each WebSocket received
exactly its order's client-visible events, in order.

Times are the log's `recorded_at` (Postgres' clock_timestamp() on this host) and the
client's time.time(), on the same clock."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import psycopg

from domain.order import INTERNAL_EVENTS
from tests.benchmarks.capacity.burst import Burst, SocketLog
from tests.benchmarks.flood import TERMINAL, percentile
from tests.waiting import wait_until

CHAIN = ("OrderPending", "OrderRouting", "OrderBuilding", "SwapRequested", "OrderSubmitted", "OrderConfirmed")
INTERNAL_TYPES = frozenset(t.__name__ for t in INTERNAL_EVENTS)  # never sent to clients
POLL_S = 0.2
SENT_TO_PENDING = "POST sent → Pending"
CONFIRMED_TO_CLIENT = "Confirmed → client"
FAILURES_LISTED = 5


def gap_name(a: str, b: str) -> str:
    return f"{a.removeprefix('Order')} → {b.removeprefix('Order')}"


GAP_NAMES = (SENT_TO_PENDING, *(gap_name(a, b) for a, b in pairwise(CHAIN)))


@dataclass
class LoggedOrder:
    events: list[tuple[int, str, float]] = field(default_factory=list)  # (version, type, recorded_at)

    def first(self, type_: str) -> float | None:
        return next((t for _, name, t in self.events if name == type_), None)

    def ended(self) -> tuple[str, float] | None:
        return next(((name, t) for _, name, t in self.events if name in TERMINAL), None)

    def visible(self) -> list[tuple[int, str]]:
        """(version, type) of the events a client is sent."""
        return [(v, name) for v, name, _ in self.events if name not in INTERNAL_TYPES]


def read_orders(database_url: str) -> dict[str, LoggedOrder]:
    orders: defaultdict[str, LoggedOrder] = defaultdict(LoggedOrder)
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        rows = conn.execute("SELECT stream_id, version, type, recorded_at FROM events ORDER BY position")
        for stream_id, version, type_, recorded_at in rows:
            orders[str(stream_id)].events.append((int(version), str(type_), recorded_at.timestamp()))
    return dict(orders)


def wait_all_ended(database_url: str, expected: int, timeout: float) -> bool:
    """Poll the log until `expected` orders have a terminal event; False at the deadline."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:

        def ended() -> bool:
            row = conn.execute(
                "SELECT count(*) FROM events WHERE type = ANY(%s)", (list(TERMINAL),)
            ).fetchone()
            return row is not None and int(row[0]) >= expected

        try:
            wait_until(ended, timeout, interval=POLL_S, what=f"{expected} orders to end")
        except AssertionError:
            return False
    return True


@dataclass(frozen=True)
class Outcome:
    confirmed: int
    failed: int
    other_end: int
    unfinished: int
    orders_per_s: float  # confirmed / (last terminal recorded_at − first POST sent)
    wall_s: float
    confirmed_at_s: list[float]  # each confirmation, seconds after the first POST


def outcome(burst: Burst, orders: Mapping[str, LoggedOrder]) -> Outcome:
    first = burst.first_sent()
    ends: list[tuple[str, float]] = []
    unfinished = 0
    for p in burst.accepted():
        order = orders.get(p.order_id or "")
        end = order.ended() if order is not None else None
        if end is None:
            unfinished += 1
        else:
            ends.append(end)
    confirmed = sorted(t - first for name, t in ends if name == "OrderConfirmed")
    failed = sum(name == "OrderFailed" for name, _ in ends)
    wall = max((t for _, t in ends), default=math.nan) - first
    return Outcome(
        confirmed=len(confirmed),
        failed=failed,
        other_end=len(ends) - len(confirmed) - failed,
        unfinished=unfinished,
        orders_per_s=len(confirmed) / wall if wall > 0 else math.nan,
        wall_s=wall,
        confirmed_at_s=confirmed,
    )


def confirm_latencies_ms(burst: Burst, orders: Mapping[str, LoggedOrder], on_socket: bool) -> list[float]:
    """POST sent → `OrderConfirmed`: recorded in the log, or received on the order's socket."""
    out = []
    for p in burst.accepted():
        assert p.order_id is not None
        if on_socket:
            log = burst.sockets.get(p.order_id)
            at = log.confirmed_at() if log else None
        else:
            at = orders[p.order_id].first("OrderConfirmed") if p.order_id in orders else None
        if at is not None:
            out.append((at - p.sent_at) * 1000)
    return sorted(out)


def breakdown_ms(burst: Burst, orders: Mapping[str, LoggedOrder]) -> dict[str, list[float]]:
    """Per gap name, each order's gap in ms (sorted): POST sent → OrderPending recorded, each
    consecutive pair of CHAIN by recorded_at, and (with sockets) OrderConfirmed → received."""
    gaps: defaultdict[str, list[float]] = defaultdict(list)
    for p in burst.accepted():
        order = orders.get(p.order_id or "")
        if order is None:
            continue
        pending = order.first("OrderPending")
        if pending is not None:
            gaps[SENT_TO_PENDING].append((pending - p.sent_at) * 1000)
        for a, b in pairwise(CHAIN):
            ta, tb = order.first(a), order.first(b)
            if ta is not None and tb is not None:
                gaps[gap_name(a, b)].append((tb - ta) * 1000)
        socket = burst.sockets.get(p.order_id or "")
        confirmed, received = order.first("OrderConfirmed"), socket.confirmed_at() if socket else None
        if confirmed is not None and received is not None:
            gaps[CONFIRMED_TO_CLIENT].append((received - confirmed) * 1000)
    return {name: sorted(values) for name, values in gaps.items()}


def gap_figures(gaps: Mapping[str, Sequence[float]]) -> dict[str, float]:
    figures = {}
    for name, values in gaps.items():
        figures[f"gap p50 ms/{name}"] = percentile(values, 0.5)
        figures[f"gap p99 ms/{name}"] = percentile(values, 0.99)
    return figures


@dataclass(frozen=True)
class SocketCheck:
    complete: int
    total: int
    failures: list[str]  # the first few


def check_sockets(burst: Burst, orders: Mapping[str, LoggedOrder]) -> SocketCheck:
    """A socket is complete when the (version, type) list it received is exactly its order's
    events in the log minus the internal ones: all of them, each once, in order. Every
    accepted order counts; one that got no socket (the burst's deadline) is incomplete."""
    complete, failures = 0, list[str]()
    accepted = [p.order_id for p in burst.accepted() if p.order_id is not None]
    for order_id in accepted:
        socket = burst.sockets.get(order_id, SocketLog(error="no socket opened (the burst ended first)"))
        expected = orders[order_id].visible() if order_id in orders else []
        got = [(m.version, m.type) for m in socket.messages]
        if got == expected and expected:
            complete += 1
            continue
        if len(failures) < FAILURES_LISTED:
            why = f"; {socket.error}" if socket.error else ""
            versions = [v for v, _ in got], [v for v, _ in expected]
            failures.append(f"{order_id}: received versions {versions[0]}, log has {versions[1]}{why}")
    return SocketCheck(complete, len(accepted), failures)

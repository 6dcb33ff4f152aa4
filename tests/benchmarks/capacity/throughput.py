"""Scenarios 1–3: the capacity burst (four variants; the 200-in-flight ones also give
POST latency under load) and one order's overhead (one order at a time)."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from adapters.settings import Settings
from tests.benchmarks.capacity.burst import Burst, order_bodies, run_burst
from tests.benchmarks.capacity.cpu import CpuMeter, CpuWindow
from tests.benchmarks.capacity.engine_run import (
    LIFTED,
    LIFTED_CONCURRENCY,
    LIFTED_RATE,
    engine_session,
    lifted_options,
)
from tests.benchmarks.capacity.log_stats import (
    LoggedOrder,
    breakdown_ms,
    check_sockets,
    confirm_latencies_ms,
    gap_figures,
    outcome,
    read_orders,
    wait_all_ended,
)
from tests.benchmarks.capacity.records import RunRecord, pct_figures, rounded
from tests.benchmarks.flood import deadline_s

WARMUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Variant:
    in_flight: int
    subscribe: bool

    @property
    def name(self) -> str:
        return f"{self.in_flight} in flight" + (" + WS" if self.subscribe else "")


VARIANTS = (Variant(50, False), Variant(50, True), Variant(200, False), Variant(200, True))
LOAD_VARIANTS = tuple(v.name for v in VARIANTS if v.in_flight == 200)  # POST latency under load


def cpu_figures(cpu: CpuWindow, orders: int) -> dict[str, float]:
    figures = {"machine busy cores": cpu.machine_busy_s / cpu.wall_s if cpu.wall_s else math.nan}
    for kind, seconds in cpu.kinds().items():
        figures[f"cpu s/{kind}"] = seconds
        figures[f"cpu ms per order/{kind}"] = seconds * 1000 / orders if orders else math.nan
    return figures


def burst_figures(burst: Burst, orders: dict[str, LoggedOrder], on_socket: bool) -> dict[str, float]:
    """Latencies, the gap breakdown and (with sockets) the completeness of every socket."""
    post_ms = sorted(p.latency_s * 1000 for p in burst.posted)
    confirm_ms = confirm_latencies_ms(burst, orders, on_socket)
    figures = {
        "posted": len(burst.posted),
        "accepted": len(burst.accepted()),
        "non-200": len(burst.posted) - len(burst.accepted()),
        **pct_figures("POST ms", post_ms),
        **pct_figures("POST→confirmed ms", confirm_ms),
        **gap_figures(breakdown_ms(burst, orders)),
    }
    if on_socket:
        figures |= pct_figures("POST→OrderConfirmed recorded ms", confirm_latencies_ms(burst, orders, False))
        check = check_sockets(burst, orders)
        figures |= {"sockets complete": check.complete, "sockets": check.total}
    return figures


def capacity_run(variant: Variant, orders: int, run: int, seed: int) -> RunRecord:
    """A burst of `orders` on a fresh engine; CPU measured from before the first POST
    until every accepted order has ended in the log."""
    opts = lifted_options(orders, variant.in_flight, Settings().worker_idle_ms)
    limit_s = deadline_s(orders, LIFTED_RATE, LIFTED_CONCURRENCY, 0.0)
    bodies = order_bodies(orders, seed)
    with engine_session(opts, LIFTED) as s:
        meter = CpuMeter(s.pid, s.database_url).start()
        try:
            started = time.monotonic()
            burst = asyncio.run(
                run_burst(s.engine.base_url, bodies, variant.in_flight, variant.subscribe, limit_s)
            )
            left = max(1.0, limit_s - (time.monotonic() - started))
            all_ended = wait_all_ended(s.database_url, len(burst.accepted()), left)
        except BaseException:
            meter.close()
            raise
        cpu = meter.stop()
        logged = read_orders(s.database_url)
    result = outcome(burst, logged)
    figures = {
        "orders/s": result.orders_per_s,
        "wall s": result.wall_s,
        "confirmed": result.confirmed,
        "failed": result.failed,
        "cancelled or expired": result.other_end,
        "unfinished": result.unfinished,
        **burst_figures(burst, logged, variant.subscribe),
        **cpu_figures(cpu, result.confirmed),
    }
    failures = check_sockets(burst, logged).failures if variant.subscribe else []
    if burst.timed_out or not all_ended:
        failures.insert(0, f"the run hit its deadline ({limit_s:.0f} s) before every order ended")
    assert s.audit is not None
    return RunRecord(
        scenario="capacity",
        variant=variant.name,
        run=run,
        figures=figures,
        audit=s.audit,
        engine_log=s.log,
        non_200=dict(burst.non_200()),
        failures=failures,
        samples={
            "post_ms": rounded(sorted(p.latency_s * 1000 for p in burst.posted)),
            "confirm_ms": rounded(confirm_latencies_ms(burst, logged, variant.subscribe)),
            "confirmed_at_s": rounded(result.confirmed_at_s),
        },
    )


def single_run(orders: int, run: int, seed: int) -> RunRecord:
    """One order at a time (after one warm-up order): POST, then its socket until `confirmed`."""
    opts = lifted_options(orders, 1, Settings().worker_idle_ms)
    limit_s = deadline_s(orders, LIFTED_RATE, 1, 0.0)
    with engine_session(opts, LIFTED) as s:
        base = s.engine.base_url
        asyncio.run(run_burst(base, order_bodies(1, seed, "warmup"), 1, True, WARMUP_TIMEOUT_S))
        burst = asyncio.run(run_burst(base, order_bodies(orders, seed, "single"), 1, True, limit_s))
        logged = read_orders(s.database_url)
    result = outcome(burst, logged)
    figures = {
        "confirmed": result.confirmed,
        "failed": result.failed,
        "unfinished": result.unfinished,
        **burst_figures(burst, logged, on_socket=True),
    }
    failures = check_sockets(burst, logged).failures
    if burst.timed_out:
        failures.insert(0, f"the run hit its deadline ({limit_s:.0f} s)")
    assert s.audit is not None
    return RunRecord(
        scenario="single",
        variant="one at a time",
        run=run,
        figures=figures,
        audit=s.audit,
        engine_log=s.log,
        non_200=dict(burst.non_200()),
        failures=failures,
        samples={
            "post_ms": rounded(sorted(p.latency_s * 1000 for p in burst.posted)),
            "confirm_ms": rounded(confirm_latencies_ms(burst, logged, True)),
        },
    )

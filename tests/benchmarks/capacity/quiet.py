"""Scenarios 4–5 on the engine's default settings: the idle engine's CPU, and the brief's
200-order flood (tests/benchmarks/flood.py's own flood and analysis)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from adapters.settings import Settings
from tests.benchmarks.capacity.cpu import REDIS_KIND, CpuMeter
from tests.benchmarks.capacity.engine_run import engine_session
from tests.benchmarks.capacity.records import RunRecord
from tests.benchmarks.flood import Options as FloodOptions
from tests.benchmarks.flood import analyse, flood_and_wait, read_log

IDLE_SETTLE_S = 5.0
DEFAULTS_ORDERS = 200
DEFAULTS_CLIENTS = 20  # flood.py's default


def default_options(orders: int) -> FloodOptions:
    """flood.py's options with every value at the engine's own default."""
    d = Settings()
    return FloodOptions(
        orders=orders,
        scale=str(d.mock_latency_scale),
        rate=d.order_processor_rate,
        concurrency=d.queue_max_concurrent,
        idle_ms=d.worker_idle_ms,
        clients=DEFAULTS_CLIENTS,
    )


def idle_run(measure_s: float, run: int) -> RunRecord:
    """The ready engine left alone: IDLE_SETTLE_S to settle, then `measure_s` of CPU."""
    with engine_session(default_options(DEFAULTS_ORDERS), {}) as s:
        # Fixed durations by definition (settle, then a measuring window), not a wait for a condition.
        pause = threading.Event()
        pause.wait(IDLE_SETTLE_S)
        meter = CpuMeter(s.pid, s.database_url).start()
        try:
            pause.wait(measure_s)
        except BaseException:
            meter.close()
            raise
        cpu = meter.stop()
    pct = {kind: 100 * seconds / cpu.wall_s for kind, seconds in cpu.kinds().items()}
    figures = {f"% of a core/{kind}": value for kind, value in pct.items()}
    figures |= {
        "engine %": 100 * cpu.engine_s() / cpu.wall_s,
        "engine + postgres %": 100 * (cpu.engine_s() + cpu.postgres_s()) / cpu.wall_s,
        "redis-server %": 100 * cpu.by_kind.get(REDIS_KIND, 0.0) / cpu.wall_s,
        "machine busy %": 100 * cpu.machine_busy_s / cpu.wall_s,
        "measured s": cpu.wall_s,
    }
    assert s.audit is not None
    return RunRecord("idle", "idle", run, figures, s.audit, s.log)


def defaults_run(orders: int, run: int, seed: int) -> RunRecord:
    """flood.py's 200-order flood on the default settings, analysed by flood.py."""
    opts = default_options(orders)
    with engine_session(opts, {}) as s:
        posted, samples = asyncio.run(flood_and_wait(s.engine, s.database_url, s.redis_url, opts, seed))
        log = read_log(s.database_url)
        stats = analyse(posted, log, samples)
    figures = {
        "posted": stats.posted,
        "non-200": stats.post_errors,
        "confirmed": stats.confirmed,
        "failed": stats.failed,
        "unfinished": stats.unfinished,
        "starts max in 60 s": stats.starts_max_60s,
        "starts per min (mean)": stats.start_rate_per_min,
        "in flight max": stats.inflight_max,
        "limiter in flight max (sampled)": stats.limiter_sampled_max,
        "orders seen without a slot": len(stats.slotless),
        "wall s": stats.wall_s,
        "POST ms p50": stats.post_p50_ms,
        "POST ms p99": stats.post_p99_ms,
        "POST→confirmed s p50": stats.confirm_p50_s,
        "POST→confirmed s p99": stats.confirm_p99_s,
    }
    reasons = Counter((o.error or "?")[:160] for o in log.values() if o.outcome == "OrderFailed")
    failures = [f"{n}× failed: {reason}" for reason, n in reasons.most_common(5)]
    failures += [f"{n}× unfinished at {state}" for state, n in stats.stuck_states]
    if stats.starts_by_minute:
        figures["starts in first minute"] = stats.starts_by_minute[0]
    assert s.audit is not None
    non_200 = Counter(p.error for p in posted if p.error is not None)
    return RunRecord(
        "defaults", "200 orders, defaults", run, figures, s.audit, s.log, dict(non_200), failures
    )

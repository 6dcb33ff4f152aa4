"""Command line: run the scenarios `--runs` times (interleaved, so the machine's other
load falls on all of them alike), print a line per run and the medians, write the report."""

from __future__ import annotations

import argparse
import random
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.bench_env import scratch_servers
from tests.benchmarks.capacity import plot, report
from tests.benchmarks.capacity.burst import USERS
from tests.benchmarks.capacity.engine_run import LIFTED, LIFTED_CONCURRENCY, LIFTED_RATE, LIFTED_SCALE
from tests.benchmarks.capacity.machine import machine
from tests.benchmarks.capacity.quiet import DEFAULTS_ORDERS, defaults_run, idle_run
from tests.benchmarks.capacity.records import RunRecord, Summaries, summaries
from tests.benchmarks.capacity.targets import judge
from tests.benchmarks.capacity.throughput import VARIANTS, Variant, capacity_run, single_run
from tests.e2e.engine import REPO

SCENARIOS = ("capacity", "single", "idle", "defaults")
MAX_RUNS, MAX_ORDERS, MAX_SINGLE = 10, 10_000, 2_000
IDLE_S, QUICK_IDLE_S = 30.0, 5.0
CPU_SHOWN = (
    "api",
    "worker",
    "scheduler",
    "postgres (all backends)",
    "redis-server",
    "benchmark client",
    "rest of the machine",
)
SHOWN_PER_RUN = 3  # non-200 bodies and failures printed under a run's line


@dataclass(frozen=True)
class Options:
    runs: int
    orders: int
    single_orders: int
    scenarios: tuple[str, ...]
    out: Path
    idle_s: float


def parse(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.capacity", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help=f"runs of each scenario (max {MAX_RUNS})")
    parser.add_argument(
        "--orders", type=int, default=2000, help=f"orders per capacity burst (max {MAX_ORDERS})"
    )
    parser.add_argument(
        "--single-orders", type=int, default=200, help=f"one-at-a-time orders (max {MAX_SINGLE})"
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of " + ",".join(SCENARIOS)
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md", help="the report")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 200 orders, 1 run, single 20, idle 5 s, no defaults"
    )
    args = parser.parse_args(argv)
    scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.quick:
        return Options(1, 200, 20, tuple(s for s in scenarios if s != "defaults"), args.out, QUICK_IDLE_S)
    return Options(
        runs=min(max(args.runs, 1), MAX_RUNS),
        orders=min(max(args.orders, 1), MAX_ORDERS),
        single_orders=min(max(args.single_orders, 1), MAX_SINGLE),
        scenarios=scenarios,
        out=args.out,
        idle_s=IDLE_S,
    )


def _f(r: RunRecord, name: str, fmt: str = "{:.1f}") -> str:
    return fmt.format(r.get(name))


def line(r: RunRecord) -> str:
    head = f"{r.scenario} [{r.variant}] run {r.run}: "
    if r.scenario in ("capacity", "single"):
        text = (
            f"{_f(r, 'confirmed', '{:.0f}')}/{_f(r, 'accepted', '{:.0f}')} confirmed"
            + (
                f", {_f(r, 'orders/s', '{:.0f}')} orders/s over {_f(r, 'wall s')} s"
                if r.scenario == "capacity"
                else ""
            )
            + f"; POST p50 {_f(r, 'POST ms p50')} p90 {_f(r, 'POST ms p90')} p99 {_f(r, 'POST ms p99')} "
            f"max {_f(r, 'POST ms max')} ms; POST→confirmed p50 {_f(r, 'POST→confirmed ms p50')} "
            f"p99 {_f(r, 'POST→confirmed ms p99')} ms; non-200 {_f(r, 'non-200', '{:.0f}')}"
        )
        if "sockets" in r.figures:
            text += f"; sockets complete {_f(r, 'sockets complete', '{:.0f}')}/{_f(r, 'sockets', '{:.0f}')}"
        if r.scenario == "capacity":
            text += "; CPU ms/order " + ", ".join(
                f"{k} {_f(r, f'cpu ms per order/{k}', '{:.2f}')}" for k in CPU_SHOWN
            )
    elif r.scenario == "idle":
        text = (
            f"engine {_f(r, 'engine %', '{:.2f}')}% of a core, with its Postgres backends "
            f"{_f(r, 'engine + postgres %', '{:.2f}')}%, redis-server {_f(r, 'redis-server %', '{:.2f}')}%, "
            f"machine {_f(r, 'machine busy %', '{:.0f}')}%"
        )
    else:
        text = (
            f"{_f(r, 'confirmed', '{:.0f}')}/{_f(r, 'posted', '{:.0f}')} confirmed, most starts in 60 s "
            f"{_f(r, 'starts max in 60 s', '{:.0f}')}, in flight max {_f(r, 'in flight max', '{:.0f}')}, "
            f"wall {_f(r, 'wall s')} s, non-200 {_f(r, 'non-200', '{:.0f}')}"
        )
    text += f"; {r.audit.text()}"
    if r.engine_log and r.engine_log.errors:
        text += f"; engine log: {r.engine_log.errors} errors (kept at {r.engine_log.kept_at})"
    details = [f"{n}× {body}" for body, n in sorted(r.non_200.items(), key=lambda x: -x[1])[:SHOWN_PER_RUN]]
    details += r.failures[:SHOWN_PER_RUN]
    return head + text + "".join(f"\n    {d}" for d in details)


def medians_text(s: Summaries) -> list[str]:
    out = []
    for variant, f in s.get("capacity", {}).items():
        out.append(
            f"capacity [{variant}]: {f['orders/s'].text('{:.0f}')} orders/s; "
            f"POST p99 {f['POST ms p99'].text()} ms; "
            f"POST→confirmed p50 {f['POST→confirmed ms p50'].text()} ms"
        )
    if single := s.get("single", {}).get("one at a time"):
        f = single
        out.append(
            f"single: POST→confirmed p50 {f['POST→confirmed ms p50'].text()} p99 "
            f"{f['POST→confirmed ms p99'].text()} ms; POST p50 {f['POST ms p50'].text()} ms"
        )
    if idle := s.get("idle", {}).get("idle"):
        out.append(f"idle: engine + postgres {idle['engine + postgres %'].text('{:.2f}')}% of a core")
    if defaults := s.get("defaults", {}).get("200 orders, defaults"):
        out.append(
            f"defaults: most starts in 60 s {defaults['starts max in 60 s'].text('{:.0f}')}, "
            f"in flight max {defaults['in flight max'].text('{:.0f}')}"
        )
    return out


def plan(opts: Options, seed: int) -> list[tuple[str, Callable[[int], RunRecord]]]:
    """One run's jobs, in order: (label, job taking the run number)."""

    def capacity(variant: Variant, index: int) -> Callable[[int], RunRecord]:
        return lambda run: capacity_run(variant, opts.orders, run, seed + 10 * run + index)

    jobs: list[tuple[str, Callable[[int], RunRecord]]] = []
    if "capacity" in opts.scenarios:
        jobs += [(f"capacity [{v.name}]", capacity(v, i)) for i, v in enumerate(VARIANTS)]
    if "single" in opts.scenarios:
        jobs.append(("single", lambda run: single_run(opts.single_orders, run, seed + 10 * run + 5)))
    if "idle" in opts.scenarios:
        jobs.append(("idle", lambda run: idle_run(opts.idle_s, run)))
    if "defaults" in opts.scenarios:
        jobs.append(("defaults", lambda run: defaults_run(DEFAULTS_ORDERS, run, seed + 10 * run + 7)))
    return jobs


def settings_text(opts: Options) -> dict[str, str]:
    lifted = (
        f"MOCK_LATENCY_SCALE={LIFTED_SCALE} QUEUE_MAX_CONCURRENT={LIFTED_CONCURRENCY} "
        f"ORDER_PROCESSOR_RATE={LIFTED_RATE} " + " ".join(f"{k}={v}" for k, v in LIFTED.items())
    )
    return {
        "capacity": (
            f"Settings: `{lifted}`, LOG_LEVEL=WARNING, the rest default. {opts.orders:,} SOL→USDC "
            f"market orders (0.001–2 SOL) over {USERS} userIds per run. *N in flight*: N client tasks "
            "share one iterator of the orders and POST back to back; *+ WS*: each task POSTs, follows "
            "its order on `/ws?orderId=` to the terminal message, closes, then takes the next order."
        ),
        "single": (
            f"Settings as for capacity (`{lifted}`); {opts.single_orders} orders per run after one warm-up."
        ),
        "idle_s": str(opts.idle_s),
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = parse(argv)
    command = shlex.join([".venv/bin/python", "-m", "tests.benchmarks.capacity", *argv])
    started = time.monotonic()
    with scratch_servers() as (database_url, redis_url):
        box = machine(database_url, redis_url)
    print(f"{command}\n{box.text()}", flush=True)
    seed = random.SystemRandom().randrange(1_000_000)
    records: list[RunRecord] = []
    crashed: list[str] = []
    jobs = plan(opts, seed)
    for run in range(1, opts.runs + 1):
        for label, job in jobs:
            try:
                record = job(run)
            except Exception:  # one broken run is reported; the others still run
                print(f"{label} run {run}: FAILED\n{traceback.format_exc()}", flush=True)
                crashed.append(f"{label} run {run}: {traceback.format_exc().strip().splitlines()[-1]}")
                continue
            records.append(record)
            print(line(record), flush=True)
    took = time.monotonic() - started
    s = summaries(records)
    targets = judge(s, records)
    print(f"\nmedians of {opts.runs} run(s), took {took / 60:.1f} min:")
    for text in medians_text(s):
        print(f"  {text}")
    print("targets:")
    for t in targets:
        print(f"  [{t.verdict().strip('*')}] {t.name}: {t.result or '–'}")
    png_path = opts.out.with_suffix(".png")
    png = report.relative(png_path, opts.out) if plot.plot(records, png_path) else None
    block = report.markdown(
        box, command, took, opts.runs, s, targets, records, settings_text(opts), png, crashed
    )
    report.write_markdown(opts.out, block)
    report.write_json(opts.out.with_suffix(".json"), box, command, took, s, records)
    print(f"wrote {opts.out}, {opts.out.with_suffix('.json')}" + (f", {png_path}" if png else ""))
    return 1 if crashed else 0

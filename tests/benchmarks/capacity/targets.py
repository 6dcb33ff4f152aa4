"""The targets, each judged from the runs: met, not met, or not run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tests.benchmarks.capacity.records import RunRecord, Summaries
from tests.benchmarks.capacity.throughput import LOAD_VARIANTS, VARIANTS

CAPACITY_MIN, CAPACITY_MOONSHOT = 600.0, 1000.0
POST_P99_MAX_MS = 50.0
SINGLE_P50_MAX_MS, SINGLE_P99_MAX_MS = 15.0, 30.0
IDLE_MAX_PCT = 3.0
STARTS_PER_MIN, STARTS_SLACK, IN_FLIGHT_MAX = 100, 5, 10


@dataclass(frozen=True)
class Target:
    name: str
    result: str
    met: bool | None  # None: not run

    def verdict(self) -> str:
        return "not run" if self.met is None else ("**met**" if self.met else "**not met**")


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def capacity_target(s: Summaries) -> Target:
    name = (
        f"capacity ≥ {_fmt(CAPACITY_MIN)} orders/s in all four variants (moonshot {_fmt(CAPACITY_MOONSHOT)})"
    )
    cap = s.get("capacity", {})
    found = [(v.name, cap[v.name]["orders/s"]) for v in VARIANTS if v.name in cap]
    if not found:
        return Target(name, "", None)
    text = "; ".join(f"{n}: {x.text('{:.0f}')}" for n, x in found)
    met = len(found) == len(VARIANTS) and all(x.median >= CAPACITY_MIN for _, x in found)
    if met and all(x.median >= CAPACITY_MOONSHOT for _, x in found):
        text += " (moonshot met)"
    return Target(name, text, met)


def post_target(s: Summaries, records: Sequence[RunRecord]) -> Target:
    name = f"POST p99 ≤ {_fmt(POST_P99_MAX_MS)} ms at 200 in flight, every POST accepted"
    cap = s.get("capacity", {})
    found = [(v, cap[v]["POST ms p99"]) for v in LOAD_VARIANTS if v in cap]
    if not found:
        return Target(name, "", None)
    rejected = sum(
        int(r.get("non-200")) for r in records if r.scenario == "capacity" and r.variant in LOAD_VARIANTS
    )
    text = "; ".join(f"{v}: p99 {x.text()} ms" for v, x in found) + f"; {rejected} POSTs not accepted"
    met = all(x.median <= POST_P99_MAX_MS for _, x in found) and rejected == 0
    return Target(name, text, met)


def single_target(s: Summaries) -> Target:
    name = f"one order POST→confirmed p50 ≤ {_fmt(SINGLE_P50_MAX_MS)} ms, p99 ≤ {_fmt(SINGLE_P99_MAX_MS)} ms"
    single = s.get("single", {}).get("one at a time")
    if not single:
        return Target(name, "", None)
    p50, p99 = single["POST→confirmed ms p50"], single["POST→confirmed ms p99"]
    met = p50.median <= SINGLE_P50_MAX_MS and p99.median <= SINGLE_P99_MAX_MS
    return Target(name, f"p50 {p50.text()} ms, p99 {p99.text()} ms", met)


def sockets_target(records: Sequence[RunRecord]) -> Target:
    name = "every WebSocket gets every event of its order, in order"
    with_sockets = [r for r in records if "sockets" in r.figures]
    if not with_sockets:
        return Target(name, "", None)
    complete = sum(int(r.get("sockets complete")) for r in with_sockets)
    total = sum(int(r.get("sockets")) for r in with_sockets)
    runs_short = sum(r.get("sockets complete") < r.get("sockets") for r in with_sockets)
    text = f"{complete:,} of {total:,} sockets complete over {len(with_sockets)} runs"
    if runs_short:
        text += f" ({runs_short} runs with incomplete sockets)"
    return Target(name, text, complete == total)


def idle_target(s: Summaries) -> Target:
    name = f"idle ≤ {_fmt(IDLE_MAX_PCT)}% of a core in total (engine processes + their Postgres backends)"
    idle = s.get("idle", {}).get("idle")
    if not idle:
        return Target(name, "", None)
    total, engine = idle["engine + postgres %"], idle["engine %"]
    text = f"{total.text('{:.2f}')}% (engine alone {engine.text('{:.2f}')}%)"
    return Target(name, text, total.median <= IDLE_MAX_PCT)


def defaults_target(records: Sequence[RunRecord]) -> Target:
    name = (
        f"brief defaults: {STARTS_PER_MIN} ± {STARTS_SLACK} starts a minute, ≤ {IN_FLIGHT_MAX} in flight, "
        "all confirmed (every run)"
    )
    runs = [r for r in records if r.scenario == "defaults"]
    if not runs:
        return Target(name, "", None)
    starts = [int(r.get("starts max in 60 s")) for r in runs]
    flight = [int(r.get("in flight max")) for r in runs]
    confirmed = [f"{int(r.get('confirmed'))}/{int(r.get('posted'))}" for r in runs]
    met = all(
        abs(st - STARTS_PER_MIN) <= STARTS_SLACK
        and fl <= IN_FLIGHT_MAX
        and r.get("confirmed") == r.get("posted")
        for st, fl, r in zip(starts, flight, runs, strict=True)
    )
    text = (
        f"most starts in a 60 s window {', '.join(map(str, starts))}; in flight max "
        f"{', '.join(map(str, flight))}; confirmed {', '.join(confirmed)} (per run)"
    )
    return Target(name, text, met)


def audit_target(records: Sequence[RunRecord]) -> Target:
    name = "`orderengine audit` clean after every run"
    if not records:
        return Target(name, "", None)
    clean = sum(r.audit.clean for r in records)
    return Target(name, f"{clean} of {len(records)} runs clean", clean == len(records))


def judge(s: Summaries, records: Sequence[RunRecord]) -> list[Target]:
    return [
        capacity_target(s),
        post_target(s, records),
        single_target(s),
        sockets_target(records),
        idle_target(s),
        defaults_target(records),
        audit_target(records),
    ]

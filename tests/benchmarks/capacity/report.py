"""docs/performance.md (only the part between the markers is generated, so analysis
written around it survives a re-run) and docs/performance.json (every run's figures
and raw latencies, for before/after comparisons)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tests.benchmarks.capacity.log_stats import CONFIRMED_TO_CLIENT, GAP_NAMES
from tests.benchmarks.capacity.machine import Machine
from tests.benchmarks.capacity.records import RunRecord, Summaries, Summary, jsonable
from tests.benchmarks.capacity.targets import Target
from tests.benchmarks.capacity.throughput import LOAD_VARIANTS, VARIANTS

BEGIN, END = "<!-- capacity:begin -->", "<!-- capacity:end -->"
TITLE = (
    "# Performance\n\nMeasured by `tests/benchmarks/capacity` (its docstring says what each figure means).\n"
)
CPU_ROWS = (
    "api",
    "worker",
    "scheduler",
    "supervisor",
    "postgres (api)",
    "postgres (worker)",
    "postgres (scheduler)",
    "postgres (other)",
    "redis-server",
    "engine (all processes)",
    "postgres (all backends)",
    "benchmark client",
    "rest of the machine",
)
LISTED = 8


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def cell(summaries: dict[str, Summary], name: str, fmt: str = "{:.1f}") -> str:
    s = summaries.get(name)
    return s.text(fmt) if s else "–"


def capacity_section(s: Summaries, settings: str) -> list[str]:
    cap = s.get("capacity", {})
    names = [v.name for v in VARIANTS if v.name in cap]
    if not names:
        return []
    out = ["### 1. Capacity: a burst of market orders", "", settings, ""]
    rows = []
    for n in names:
        f = cap[n]
        rows.append(
            [
                n,
                cell(f, "orders/s", "{:.0f}"),
                cell(f, "confirmed", "{:.0f}"),
                *(cell(f, f"POST ms {q}") for q in ("p50", "p90", "p99", "max")),
                cell(f, "POST→confirmed ms p50"),
                cell(f, "POST→confirmed ms p99"),
                cell(f, "non-200", "{:.0f}"),
                f"{cell(f, 'sockets complete', '{:.0f}')} / {cell(f, 'sockets', '{:.0f}')}"
                if "sockets" in f
                else "–",
            ]
        )
    header = ["variant", "orders/s", "confirmed", "POST p50 ms", "p90", "p99", "max"]
    header += ["POST→confirmed p50 ms", "p99", "non-200", "sockets complete"]
    out += [table(header, rows), ""]
    out += [
        "orders/s = confirmed orders in the `events` table / (last terminal event's `recorded_at` − first "
        "POST sent). POST latency is over every answer, 200 or not. POST→confirmed: to `OrderConfirmed`'s "
        "`recorded_at` without subscribers, to the `confirmed` message's receipt with them. Sockets "
        "complete: the (version, type) list a socket received equals its order's events in the log "
        "without the internal `SwapRequested`.",
        "",
        "**Where the CPU goes**, ms of CPU per confirmed order over the burst (utime + stime from /proc; "
        "Postgres backends by the engine process on the other end of their socket; redis-server is shared "
        "with anything else on the machine):",
        "",
    ]
    cpu_rows = [
        [kind, *(cell(cap[n], f"cpu ms per order/{kind}", "{:.2f}") for n in names)]
        for kind in CPU_ROWS
        if any(f"cpu ms per order/{kind}" in cap[n] for n in names)
    ]
    cpu_rows.append(["machine busy, cores", *(cell(cap[n], "machine busy cores", "{:.2f}") for n in names)])
    out += [table(["process", *names], cpu_rows), ""]
    out += [
        "**Latency breakdown per order** from the log, median / p99 ms (Confirmed → client includes "
        "opening the socket when the order ended before its socket was open):",
        "",
    ]
    gap_rows = [
        [gap, *(f"{cell(cap[n], f'gap p50 ms/{gap}')} / {cell(cap[n], f'gap p99 ms/{gap}')}" for n in names)]
        for gap in (*GAP_NAMES, CONFIRMED_TO_CLIENT)
    ]
    out += [table(["gap", *names], gap_rows), ""]
    return out


def post_section(s: Summaries) -> list[str]:
    cap = s.get("capacity", {})
    found = [v for v in LOAD_VARIANTS if v in cap]
    if not found:
        return []
    text = "; ".join(
        f"{v}: p50 {cell(cap[v], 'POST ms p50')} ms, p99 {cell(cap[v], 'POST ms p99')} ms, "
        f"max {cell(cap[v], 'POST ms max')} ms, {cell(cap[v], 'non-200', '{:.0f}')} not accepted"
        for v in found
    )
    return [
        "### 2. POST latency under load",
        "",
        "Taken from the 200-in-flight capacity runs above (POSTs answered while the engine executes): "
        f"{text}.",
        "",
    ]


def single_section(s: Summaries, settings: str) -> list[str]:
    f = s.get("single", {}).get("one at a time")
    if not f:
        return []
    rows = [
        [label, *(cell(f, f"{prefix} {q}") for q in ("p50", "p90", "p99", "max"))]
        for label, prefix in (
            ("POST → `confirmed` on the WebSocket", "POST→confirmed ms"),
            ("POST", "POST ms"),
        )
    ]
    gaps = ", ".join(f"{g} {cell(f, f'gap p50 ms/{g}')}" for g in (*GAP_NAMES, CONFIRMED_TO_CLIENT))
    return [
        "### 3. One order's overhead (one order at a time)",
        "",
        settings,
        "",
        table(["ms", "p50", "p90", "p99", "max"], rows),
        "",
        f"Median gaps (ms): {gaps}.",
        "",
    ]


def idle_section(s: Summaries, measure_s: float) -> list[str]:
    f = s.get("idle", {}).get("idle")
    if not f:
        return []
    rows = [
        [kind, cell(f, f"% of a core/{kind}", "{:.2f}")] for kind in CPU_ROWS if f"% of a core/{kind}" in f
    ]
    rows.append(["**engine + its Postgres backends**", cell(f, "engine + postgres %", "{:.2f}")])
    return [
        "### 4. Idle",
        "",
        f"The ready engine on its default settings, left alone 5 s, then measured for {measure_s:.0f} s.",
        "",
        table(["process", "% of one core"], rows),
        "",
    ]


def defaults_section(s: Summaries) -> list[str]:
    f = s.get("defaults", {}).get("200 orders, defaults")
    if not f:
        return []
    names = ("starts max in 60 s", "starts in first minute", "in flight max", "confirmed", "failed", "wall s")
    rows = [[n, cell(f, n, "{:.0f}" if n != "wall s" else "{:.1f}")] for n in names]
    rows += [[n, cell(f, n, "{:.2f}")] for n in ("POST→confirmed s p50", "POST→confirmed s p99")]
    return [
        "### 5. The brief's defaults: `tests.benchmarks.flood --orders 200`",
        "",
        "200 market orders from 20 clients on the default settings (100 starts a minute, 10 in flight, "
        "the brief's DEX delays), analysed by flood.py.",
        "",
        table(["figure", "value"], rows),
        "",
    ]


def _item(title: str, entries: Sequence[str]) -> list[str]:
    """A bullet: `none.` or the first LISTED entries nested under it."""
    if not entries:
        return [f"- **{title}**: none."]
    more = (
        [f"  - … and {len(entries) - LISTED} more (docs/performance.json)"] if len(entries) > LISTED else []
    )
    return [f"- **{title}**:", *(f"  - {e}" for e in entries[:LISTED]), *more]


def problems_section(records: Sequence[RunRecord], crashed: Sequence[str]) -> list[str]:
    non_200: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for r in records:
        non_200.update(r.non_200)
        messages.update(r.engine_log.messages if r.engine_log else {})
    where = [f"{r.scenario} [{r.variant}] run {r.run}" for r in records]
    out = ["### Problems seen", ""]
    out += _item("Runs that broke off with an exception (left out of every figure)", crashed)
    out += _item("Answers other than 200", [f"{n}× `{e}`" for e, n in non_200.most_common()])
    out += _item(
        "Incomplete sockets, failed or unfinished orders",
        [f"{w}: {f}" for w, r in zip(where, records, strict=True) for f in r.failures],
    )
    out += _item(
        "Audits not clean",
        [f"{w}: {r.audit.text()}" for w, r in zip(where, records, strict=True) if not r.audit.clean],
    )
    out += _item(
        "Engine log messages at WARNING and above, over all runs",
        [f"{n}× `{m}`" for m, n in messages.most_common()],
    )
    kept = [
        f"{w}: `{Path(r.engine_log.kept_at).name}`"
        for w, r in zip(where, records, strict=True)
        if r.engine_log and r.engine_log.kept_at
    ]
    out += _item("Engine logs with errors, kept under `.data/` (not committed)", kept)
    return [*out, ""]


def markdown(
    machine: Machine,
    command: str,
    took_s: float,
    runs: int,
    s: Summaries,
    targets: Sequence[Target],
    records: Sequence[RunRecord],
    settings: dict[str, str],
    png: str | None,
    crashed: Sequence[str] = (),
) -> str:
    out = [
        BEGIN,
        "## Capacity benchmark",
        "",
        f"`{command}` on {machine.date}, took {took_s / 60:.1f} min. Machine: {machine.text()}.",
        "",
        f"Each figure is the median of {runs} run(s), min–max over the runs in brackets; every run has a "
        "fresh engine (`orderengine run`, its own defaults unless said) on a fresh database.",
        "",
        "### Targets",
        "",
        table(["target", "result", ""], [[t.name, t.result or "–", t.verdict()] for t in targets]),
        "",
    ]
    out += capacity_section(s, settings["capacity"])
    out += post_section(s)
    out += single_section(s, settings["single"])
    out += idle_section(s, float(settings["idle_s"]))
    out += defaults_section(s)
    out += problems_section(records, crashed)
    if png:
        out += [f"![POST and POST→confirmed latency, confirmed orders over time]({png})", ""]
    return "\n".join([*out, END]) + "\n"


def write_markdown(path: Path, block: str) -> None:
    """Replace the generated block in `path` (or add it), keeping everything around it."""
    if path.exists():
        text = path.read_text()
        start, end = text.find(BEGIN), text.find(END)
        if start >= 0 and end > start:
            text = text[:start] + block.rstrip("\n") + text[end + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n" + block
    else:
        text = TITLE + "\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_json(
    path: Path, machine: Machine, command: str, took_s: float, s: Summaries, records: Sequence[RunRecord]
) -> None:
    """One key per line at the top, one run per line (its raw latencies included)."""
    medians = {
        scenario: {
            variant: {name: asdict(summary) for name, summary in figures.items()}
            for variant, figures in variants.items()
        }
        for scenario, variants in s.items()
    }
    head = {"machine": machine.as_dict(), "command": command, "took_s": took_s, "summaries": medians}
    lines = [f" {json.dumps(k)}: {json.dumps(jsonable(v), ensure_ascii=False)}," for k, v in head.items()]
    runs = [" " + json.dumps(jsonable(asdict(r)), ensure_ascii=False) for r in records]
    path.write_text("{\n" + "\n".join(lines) + '\n "runs": [\n' + ",\n".join(runs) + "\n ]\n}\n")


def relative(target: Path, start: Path) -> str:
    return os.path.relpath(target, start.parent)

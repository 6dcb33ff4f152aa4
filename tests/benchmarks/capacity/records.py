"""One run's results as plain data (JSON as it is), and their medians over runs."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.benchmarks.capacity.engine_run import Audit, EngineLogSummary
from tests.benchmarks.flood import percentile

SAMPLE_DECIMALS = 3


@dataclass
class RunRecord:
    scenario: str  # capacity | single | idle | defaults
    variant: str  # e.g. "200 in flight + WS"; the scenario's name when it has one variant
    run: int  # 1-based
    figures: dict[str, float]  # flat numbers, medianed over runs
    audit: Audit
    engine_log: EngineLogSummary | None
    non_200: dict[str, int] = field(default_factory=dict)  # status and body -> count
    failures: list[str] = field(default_factory=list)  # incomplete sockets, failed orders: a few
    samples: dict[str, list[float]] = field(default_factory=dict)  # raw latencies for the plot

    def get(self, name: str) -> float:
        return self.figures.get(name, math.nan)


def pct_figures(
    prefix: str, ordered: Sequence[float], qs: Iterable[str] = ("p50", "p90", "p99")
) -> dict[str, float]:
    """`{prefix} p50` … and `{prefix} max` of an ascending sequence."""
    out = {f"{prefix} {q}": percentile(ordered, int(q[1:]) / 100) for q in qs}
    out[f"{prefix} max"] = ordered[-1] if ordered else math.nan
    return out


def rounded(values: Iterable[float]) -> list[float]:
    return [round(v, SAMPLE_DECIMALS) for v in values]


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    runs: int

    def text(self, fmt: str = "{:.1f}") -> str:
        if math.isnan(self.median):
            return "–"
        if self.runs <= 1 or self.low == self.high:
            return fmt.format(self.median)
        return f"{fmt.format(self.median)} ({fmt.format(self.low)}–{fmt.format(self.high)})"


def summarise(values: Iterable[float]) -> Summary:
    real = [v for v in values if not math.isnan(v)]
    if not real:
        return Summary(math.nan, math.nan, math.nan, 0)
    return Summary(statistics.median(real), min(real), max(real), len(real))


Summaries = dict[str, dict[str, dict[str, Summary]]]  # scenario -> variant -> figure -> summary


def summaries(records: Iterable[RunRecord]) -> Summaries:
    grouped: defaultdict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in records:
        grouped[(r.scenario, r.variant)].append(r)
    out: Summaries = {}
    for (scenario, variant), runs in grouped.items():
        names = dict.fromkeys(name for r in runs for name in r.figures)
        out.setdefault(scenario, {})[variant] = {n: summarise(r.get(n) for r in runs) for n in names}
    return out


def jsonable(value: Any) -> Any:
    """NaN and infinities as null, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def load_records(path: Path) -> list[RunRecord]:
    """The runs of a docs/performance.json written earlier (to compare or re-plot); a
    figure written as null (NaN) comes back as NaN."""
    records = []
    for run in json.loads(path.read_text())["runs"]:
        log = run.get("engine_log")
        records.append(
            RunRecord(
                scenario=run["scenario"],
                variant=run["variant"],
                run=int(run["run"]),
                figures={k: math.nan if v is None else float(v) for k, v in run["figures"].items()},
                audit=Audit(**run["audit"]),
                engine_log=EngineLogSummary(**log) if log else None,
                non_200=run.get("non_200", {}),
                failures=run.get("failures", []),
                samples=run.get("samples", {}),
            )
        )
    return records

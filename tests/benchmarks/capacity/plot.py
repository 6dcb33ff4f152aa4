"""docs/performance.png: POST latency and POST→confirmed latency as CDFs per capacity
variant (all runs pooled, log x axis; the one-at-a-time order beside them), and
confirmed orders over time, one line per run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to a file

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from tests.benchmarks.capacity.records import RunRecord
from tests.benchmarks.capacity.throughput import VARIANTS

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")
SINGLE = "one at a time"


def _cdf(ax: Axes, values: Sequence[float], label: str, **style: Any) -> None:
    ordered = sorted(v for v in values if v > 0)
    if not ordered:
        return
    n = len(ordered)
    ax.step(ordered, [(i + 1) / n for i in range(n)], where="post", label=f"{label} (n={n:,})", **style)


def _pooled(records: Sequence[RunRecord], scenario: str, variant: str, key: str) -> list[float]:
    return [
        v for r in records if r.scenario == scenario and r.variant == variant for v in r.samples.get(key, [])
    ]


def plot(records: Sequence[RunRecord], path: Path) -> bool:
    """Write the figure; False (and nothing written) if no run has latencies to plot."""
    if not any(r.samples for r in records):
        return False
    fig, (post_ax, confirm_ax, time_ax) = plt.subplots(1, 3, figsize=(18, 5.5))
    for variant, colour in zip(VARIANTS, COLOURS, strict=True):
        _cdf(post_ax, _pooled(records, "capacity", variant.name, "post_ms"), variant.name, color=colour)
        _cdf(confirm_ax, _pooled(records, "capacity", variant.name, "confirm_ms"), variant.name, color=colour)
        runs = [r for r in records if r.scenario == "capacity" and r.variant == variant.name]
        for i, r in enumerate(runs):
            times = r.samples.get("confirmed_at_s", [])
            if times:
                label = variant.name if i == 0 else None
                time_ax.plot(times, range(1, len(times) + 1), color=colour, alpha=0.8, label=label)
    single: dict[str, Any] = {"color": "black", "linestyle": "--"}
    _cdf(post_ax, _pooled(records, "single", SINGLE, "post_ms"), SINGLE, **single)
    _cdf(confirm_ax, _pooled(records, "single", SINGLE, "confirm_ms"), SINGLE, **single)
    for ax, title in (
        (post_ax, "POST /api/orders/execute answered"),
        (confirm_ax, "POST sent → confirmed (log, or WebSocket receipt with WS)"),
    ):
        ax.set_xscale("log")
        low, high = ax.get_xlim()
        # 1-2-5 labels over a narrow range; over more than ~2.5 decades they would overlap.
        subs = (1.0, 2.0, 5.0) if high / max(low, 1e-9) < 300 else (1.0,)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("ms (log scale)")
        ax.set_ylabel("fraction of orders")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    time_ax.set_title("confirmed orders over time (each run)")
    time_ax.set_xlabel("s since the first POST")
    time_ax.set_ylabel("orders confirmed")
    time_ax.set_xlim(left=0)
    time_ax.grid(True, alpha=0.3)
    if time_ax.get_legend_handles_labels()[0]:
        time_ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True

"""Soak: the engine on its default settings (the brief's DEX delays, 10 in flight, 100
starts a minute) fed 100 orders a minute for `--minutes`, with each process's memory
sampled every 10 s.

    .venv/bin/python -m tests.benchmarks.soak [--minutes 30] [--out docs/reliability.md]

Prints a line per minute and, at the end, each process's resident memory at the start
(after the first minute), at the end and at its peak, the orders placed and how they
ended, and whether `orderengine audit` is clean; `--out` writes them into the file
between `<!-- soak:begin -->` and `<!-- soak:end -->` and plots the memory curve next to
it (reliability-soak.png). Talks only to 127.0.0.1; bounded by `--minutes` (at most 240).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import psycopg

from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.e2e.engine import Engine

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"
SAMPLE_S = 10.0
RATE_PER_MIN = 100


def processes(engine: Engine) -> dict[str, psutil.Process]:
    assert engine.proc is not None
    found: dict[str, psutil.Process] = {}
    for child in psutil.Process(engine.proc.pid).children():
        role = next((r for r in ("api", "worker", "scheduler") if r in child.cmdline()), None)
        if role is not None:
            found[role] = child
    return found


def rss_mib(process: psutil.Process) -> float:
    try:
        return process.memory_info().rss / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def outcome_counts(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not 0.5 <= args.minutes <= 240:
        print("soak: --minutes must be 0.5 to 240", file=sys.stderr)
        return 2
    samples: dict[str, list[tuple[float, float]]] = {}
    placed = refused = 0
    with scratch_servers() as (database_url, redis_url):
        engine = Engine(database_url, redis_url, MOCK_LATENCY_SCALE="1", LOG_LEVEL="WARNING").start()
        try:
            procs = processes(engine)
            started = time.monotonic()
            next_order, next_sample, minute = started, started, 0
            client = httpx.Client(base_url=engine.base_url, timeout=30)
            while (now := time.monotonic()) - started < args.minutes * 60:
                if now >= next_order:
                    body = {
                        "userId": f"soak-{placed % 10}",
                        "orderType": "market",
                        "tokenIn": "SOL",
                        "tokenOut": "USDC",
                        "amount": "0.5",
                    }
                    answer = client.post("/api/orders/execute", json=body)
                    placed += answer.status_code == 200
                    refused += answer.status_code != 200
                    next_order += 60 / RATE_PER_MIN
                if now >= next_sample:
                    for role, process in processes(engine).items():
                        samples.setdefault(role, []).append((now - started, rss_mib(process)))
                    next_sample += SAMPLE_S
                if int((now - started) // 60) > minute:
                    minute = int((now - started) // 60)
                    memory = ", ".join(f"{r} {s[-1][1]:.0f} MiB" for r, s in samples.items())
                    print(f"minute {minute}: {placed} placed, {refused} refused; {memory}", flush=True)
                time.sleep(max(0.0, min(next_order, next_sample) - time.monotonic()))
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                counts = outcome_counts(database_url)
                if sum(counts.get(s, 0) for s in ("confirmed", "failed", "cancelled", "expired")) >= placed:
                    break
                time.sleep(2)
            counts = outcome_counts(database_url)
            try:
                clean = engine.audit()["divergences"] == []
            except AssertionError:
                clean = False
            restarts = engine.log_path.read_text(errors="replace").count("restarting it")
            client.close()
            del procs
        finally:
            engine.stop()
            delete_prefix(redis_url, engine.prefix)
    lines = [
        f"`.venv/bin/python -m tests.benchmarks.soak --minutes {args.minutes:g}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores: {RATE_PER_MIN} orders a minute on "
        "the default settings (the brief's DEX delays, 10 in flight, 100 starts a minute).",
        "",
        f"- orders placed {placed}, refused {refused}; ended: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; audit {'clean' if clean else 'NOT clean'}; process restarts {restarts}",
    ]
    for role, points in samples.items():
        after_warmup = [m for t, m in points if t >= 60] or [m for _, m in points]
        lines.append(
            f"- {role}: resident memory {after_warmup[0]:.1f} MiB after the first minute, "
            f"{after_warmup[-1]:.1f} MiB at the end, peak {max(after_warmup):.1f} MiB "
            f"({len(points)} samples, every {SAMPLE_S:g} s)"
        )
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        plot = args.out.with_name("reliability-soak.png")
        _plot(samples, plot)
        text += f"\n\n![resident memory of each process over the soak]({plot.name})"
        document = args.out.read_text() if args.out.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
        if BEGIN not in document:
            document += f"\n## Soak\n\n{BEGIN}\n{END}\n"
        head, _, rest = document.partition(BEGIN)
        _, _, tail = rest.partition(END)
        args.out.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


def _plot(samples: dict[str, list[tuple[float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4))
    for role, points in samples.items():
        axes.plot([t / 60 for t, _ in points], [m for _, m in points], label=role)
    axes.set_xlabel("minutes")
    axes.set_ylabel("resident memory, MiB")
    axes.set_title("Soak: 100 orders a minute on the default settings")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())

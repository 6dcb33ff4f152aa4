"""Is the dashboard's board smooth with a thousand rows? Measured in headless Chromium on the
real engine (shrunk mock delays) while 1,000 orders stream onto the board.

    .venv/bin/python -m tests.benchmarks.dashboard              # 1,000 orders, 3 runs
    .venv/bin/python -m tests.benchmarks.dashboard --orders 200 --runs 1

In the page: long tasks (PerformanceObserver 'longtask'), frame intervals
(requestAnimationFrame deltas), the time from an event's arrival on the socket to the
first task after the frame that wrote its row, and the time to apply a filter and to scroll
the board through every row. Prints each run and the median of the runs. Only talks to
127.0.0.1; the orders are bounded by --orders (max 2,000) and --runs (max 5).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx

from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.e2e.engine import Engine

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SAMPLES = Path(__file__).with_name("dashboard_probe.js")


async def _place(base_url: str, user: str, orders: int, concurrency: int = 16) -> float:
    """POST `orders` market orders with `concurrency` in flight; the seconds it took."""
    body = {"userId": user, "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
    left = iter(range(orders))
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def worker() -> None:
            for _ in left:
                answer = await client.post("/api/orders/execute", json=body)
                answer.raise_for_status()

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
    return time.perf_counter() - started


def one_run(browser: Any, engine: Engine, orders: int) -> dict[str, float]:
    user = f"bench-dash-{uuid.uuid4().hex[:8]}"
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.add_init_script(path=str(SAMPLES))
    page.goto(f"{engine.base_url}/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#session-userId", user)
    page.click("#session button[type=submit]")
    page.wait_for_selector("#connection[data-state=live]")
    page.evaluate("window.__bench.start()")
    posting: dict[str, float] = {}
    poster = threading.Thread(
        target=lambda: posting.update(seconds=anyio.run(_place, engine.base_url, user, orders))
    )
    started = time.perf_counter()
    poster.start()
    # Polled every 250 ms, not per frame: the wait must not add to the frames it measures.
    page.wait_for_function(
        "n => document.querySelectorAll('#board tbody tr[data-status=confirmed], "
        "#board tbody tr[data-status=failed]').length >= n",
        arg=orders,
        polling=250,
        timeout=300_000,
    )
    streamed_s = time.perf_counter() - started
    poster.join()
    figures: dict[str, float] = page.evaluate("window.__bench.stop()")
    figures |= page.evaluate("window.__bench.filterAndScroll()")
    figures["post_s"] = posting["seconds"]
    figures["stream_s"] = streamed_s
    page.close()
    return figures


SHOWN = [
    ("frames", "frames sampled", "{:.0f}"),
    ("frame_median_ms", "frame interval median (ms)", "{:.1f}"),
    ("frame_p95_ms", "frame interval p95 (ms)", "{:.1f}"),
    ("frame_max_ms", "frame interval max (ms)", "{:.1f}"),
    ("longtasks", "long tasks (> 50 ms)", "{:.0f}"),
    ("longtask_max_ms", "longest task (ms)", "{:.0f}"),
    ("longtask_total_ms", "long tasks, total (ms)", "{:.0f}"),
    ("render_median_ms", "flush of dirty rows, median (ms)", "{:.2f}"),
    ("render_max_ms", "flush of dirty rows, max (ms)", "{:.1f}"),
    ("event_to_row_median_ms", "event on socket -> row shown, median (ms)", "{:.1f}"),
    ("event_to_row_p95_ms", "event on socket -> row shown, p95 (ms)", "{:.1f}"),
    ("event_to_row_max_ms", "event on socket -> row shown, max (ms)", "{:.1f}"),
    ("events", "events received", "{:.0f}"),
    ("filter_ms", "apply a status filter, 1,000 rows (ms)", "{:.1f}"),
    ("unfilter_ms", "clear the filter, 1,000 rows (ms)", "{:.1f}"),
    ("scroll_ms", "scroll top to bottom (ms)", "{:.0f}"),
    ("scroll_frame_p95_ms", "frame interval p95 while scrolling (ms)", "{:.1f}"),
    ("scroll_frame_max_ms", "frame interval max while scrolling (ms)", "{:.1f}"),
    ("post_s", "POSTing the orders (s)", "{:.1f}"),
    ("stream_s", "first POST -> every row final (s)", "{:.1f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000, help="orders per run (max 2000)")
    parser.add_argument("--runs", type=int, default=3, help="runs (max 5)")
    args = parser.parse_args()
    orders, runs = max(1, min(args.orders, 2000)), max(1, min(args.runs, 5))
    from playwright.sync_api import sync_playwright

    results: list[dict[str, float]] = []
    with scratch_servers() as (database_url, redis_url):
        engine = Engine(
            database_url,
            redis_url,
            ORDER_RATE_PER_MIN="0",
            ORDER_PROCESSOR_RATE="6000000",
            QUEUE_MAX_CONCURRENT="1000",
            LOG_LEVEL="WARNING",
        ).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                for run in range(runs):
                    results.append(one_run(browser, engine, orders))
                    keys = ("frame_p95_ms", "longtask_max_ms", "stream_s")
                    shown = ", ".join(f"{key} {results[-1][key]:.1f}" for key in keys)
                    print(f"run {run + 1}: {shown}", flush=True)
                browser.close()
        finally:
            engine.stop()
            delete_prefix(redis_url, engine.prefix)
    print(f"\n{orders} orders onto the board, median of {runs} runs:")
    for key, label, fmt in SHOWN:
        print(f"  {label:<45} {fmt.format(statistics.median(r[key] for r in results))}")


if __name__ == "__main__":
    main()

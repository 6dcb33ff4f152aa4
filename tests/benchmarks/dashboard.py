"""Is the dashboard's board smooth with a thousand rows? Measured in headless Chromium on the
real engine (shrunk mock delays), in two scenarios:

- burst: 1,000 orders POSTed 16 at a time stream onto an empty board (~5,000 events in ~14 s);
- steady: 1,000 finished orders are already on the board (the history the stream replays when
  the page connects), then live orders arrive at `--pace` orders a second for `--seconds`.

    .venv/bin/python -m tests.benchmarks.dashboard                      # both, 3 runs each
    .venv/bin/python -m tests.benchmarks.dashboard --scenario steady --runs 1
    .venv/bin/python -m tests.benchmarks.dashboard --page-from /tmp/old  # another copy of the page
    .venv/bin/python -m tests.benchmarks.dashboard --runs 1 --profile    # where the main thread goes

In the page (tests/benchmarks/dashboard_probe.js): long tasks (PerformanceObserver
'longtask'), frame intervals (requestAnimationFrame deltas), the time of the page's frame
callbacks, the time from an event's arrival on the socket to the first task after the frame
that wrote it into its row (rows the board keeps in its DOM: in view), and the time to apply a
filter and to scroll the board through every row. `--profile` records a Chromium trace of the
first run of each scenario and prints the main thread's busiest trace events (self time).
Prints each run and the median of the runs. Only talks to 127.0.0.1; everything is bounded:
--orders (max 2,000), --runs (max 5), --pace (max 50/s), --seconds (max 120).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import httpx

from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.browser import launch
from tests.e2e.engine import Engine

SAMPLES = Path(__file__).with_name("dashboard_probe.js")
ORDER = {"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute"]
# How many orders the board holds as final (confirmed or failed): from the page's state when it
# exposes one (a windowed board keeps only the rows in view in its DOM), else from its rows.
FINISHED = (
    "n => { const board = window.dashboard && window.dashboard.board;"
    " if (board) return board.finished() >= n;"
    " return document.querySelectorAll('#board tbody tr[data-status=confirmed], "
    "#board tbody tr[data-status=failed]').length >= n; }"
)


async def _place(base_url: str, user: str, orders: int, concurrency: int = 16) -> float:
    """POST `orders` market orders with `concurrency` in flight; the seconds it took."""
    body = {"userId": user, **ORDER}
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


async def _paced(base_url: str, user: str, pace: float, seconds: float) -> int:
    """POST one market order every 1/pace s for `seconds` (each on its own task); how many."""
    body = {"userId": user, **ORDER}
    count = int(pace * seconds)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one() -> None:
            (await client.post("/api/orders/execute", json=body)).raise_for_status()

        async with anyio.create_task_group() as tg:
            for i in range(count):
                await anyio.sleep(max(0.0, started + i / pace - time.perf_counter()))
                tg.start_soon(one)
    return count


def _in_thread(func: Any, *args: Any) -> Any:
    """Run an async function to its end on a thread of its own (Playwright's sync API keeps
    an event loop running on this one); its result."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(anyio.run(func, *args)))
    thread.start()
    thread.join()
    return result[0]


def _finished_in_log(base_url: str, user: str) -> int:
    answer = httpx.get(f"{base_url}/api/stats/users/{user}", timeout=10)
    if answer.status_code == 404:
        return 0
    counts = answer.json()["byStatus"]
    return int(counts["confirmed"] + counts["failed"])


def _serve_page_from(page: Any, base_url: str, folder: Path) -> None:
    """Answer the page's scripts and styles (/dashboard/*) from `folder`: to measure another
    copy of the dashboard (the code before a change) against the same engine. The document
    itself still comes from the engine: Chromium refuses a WebSocket to 127.0.0.1 from a
    document it did not load from there (local network access checks)."""
    types = {".js": "text/javascript", ".css": "text/css"}

    def answer(route: Any) -> None:
        name = route.request.url[len(base_url) :].split("?")[0].removeprefix("/dashboard/")
        file = folder / name
        if "/" in name or not file.is_file():
            route.continue_()
            return
        route.fulfill(status=200, body=file.read_bytes(), content_type=types[file.suffix])

    page.route(lambda url: url.startswith(f"{base_url}/dashboard/"), answer)


def _open_board(browser: Any, engine: Engine, user: str, page_from: Path | None) -> Any:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    if page_from is not None:
        _serve_page_from(page, engine.base_url, page_from)
    page.add_init_script(path=str(SAMPLES))
    page.goto(f"{engine.base_url}/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#session-userId", user)
    return page


def _connect(page: Any) -> None:
    page.click("#session button[type=submit]")
    page.wait_for_selector("#connection[data-state=live]")


def burst_run(
    browser: Any, engine: Engine, orders: int, opts: argparse.Namespace, trace: bool
) -> dict[str, float]:
    """An empty board, then `orders` POSTed 16 at a time."""
    user = f"bench-dash-{uuid.uuid4().hex[:8]}"
    page = _open_board(browser, engine, user, opts.page_from)
    _connect(page)
    posting: dict[str, float] = {}
    poster = threading.Thread(
        target=lambda: posting.update(seconds=anyio.run(_place, engine.base_url, user, orders))
    )
    if trace:
        browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    page.evaluate("window.__bench.start()")
    started = time.perf_counter()
    poster.start()
    # Polled every 250 ms, not per frame: the wait must not add to the frames it measures.
    page.wait_for_function(FINISHED, arg=orders, polling=250, timeout=300_000)
    streamed_s = time.perf_counter() - started
    poster.join()
    figures: dict[str, float] = page.evaluate("window.__bench.stop()")
    if trace:
        figures["_trace"] = browser.stop_tracing()  # type: ignore[assignment]
    figures |= page.evaluate("window.__bench.filterAndScroll()")
    figures["post_s"] = posting["seconds"]
    figures["stream_s"] = streamed_s
    page.close()
    return figures


def steady_run(
    browser: Any, engine: Engine, orders: int, opts: argparse.Namespace, trace: bool
) -> dict[str, float]:
    """`orders` finished orders replayed as history on connect, then live ones at a pace."""
    user = f"bench-dash-{uuid.uuid4().hex[:8]}"
    _in_thread(_place, engine.base_url, user, orders)
    deadline = time.monotonic() + 300
    while _finished_in_log(engine.base_url, user) < orders:
        if time.monotonic() > deadline:
            raise TimeoutError("the history orders did not finish in 300 s")
        time.sleep(0.5)
    page = _open_board(browser, engine, user, opts.page_from)
    started = time.perf_counter()
    _connect(page)
    page.wait_for_function(FINISHED, arg=orders, polling=100, timeout=300_000)
    history_s = time.perf_counter() - started
    time.sleep(1.0)  # let the charts' first redraw after the history pass
    if trace:
        browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    page.evaluate("window.__bench.start()")
    live = _in_thread(_paced, engine.base_url, user, opts.pace, opts.seconds)
    page.wait_for_function(FINISHED, arg=orders + live, polling=250, timeout=120_000)
    figures: dict[str, float] = page.evaluate("window.__bench.stop()")
    if trace:
        figures["_trace"] = browser.stop_tracing()  # type: ignore[assignment]
    figures |= page.evaluate("window.__bench.filterAndScroll()")
    figures["history_s"] = history_s
    figures["live_orders"] = live
    page.close()
    return figures


def busiest(trace: bytes, top: int = 15, over_ms: float = 0) -> list[tuple[str, float, int]]:
    """The renderer main thread's trace events by self time (ms), busiest first; with `over_ms`,
    only inside the tasks that took longer than that (what the long tasks were made of)."""
    events = json.loads(trace)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    spans = sorted(
        (e for e in events if e.get("ph") == "X" and (e["pid"], e["tid"]) in main and "dur" in e),
        key=lambda e: (e["pid"], e["tid"], e["ts"], -e["dur"]),
    )
    self_ms: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    stack: list[tuple[Any, float, str]] = []  # (thread, end, key) of the spans enclosing this one

    counted = True  # whether the task holding this span is one to count
    for e in spans:
        thread = (e["pid"], e["tid"])
        while stack and (stack[-1][0] != thread or stack[-1][1] <= e["ts"]):
            stack.pop()
        if not stack:
            counted = e["dur"] / 1000 > over_ms
        if not counted:
            continue
        data = (e.get("args") or {}).get("data") or {}
        label = data.get("functionName") or data.get("type") or ""
        url = str(data.get("url") or "").rsplit("/", 1)[-1]
        key = f"{e['name']} {label} {url}".strip()
        self_ms[key] += e["dur"] / 1000
        count[key] += 1
        if stack:
            self_ms[stack[-1][2]] -= e["dur"] / 1000  # the parent's self time excludes it
        stack.append((thread, e["ts"] + e["dur"], key))
    ranked = sorted(self_ms.items(), key=lambda kv: -kv[1])[:top]
    return [(key, ms, count[key]) for key, ms in ranked]


COMMON = [
    ("frames", "frames sampled", "{:.0f}"),
    ("frame_median_ms", "frame interval median (ms)", "{:.1f}"),
    ("frame_p95_ms", "frame interval p95 (ms)", "{:.1f}"),
    ("frame_max_ms", "frame interval max (ms)", "{:.1f}"),
    ("longtasks", "long tasks (> 50 ms)", "{:.0f}"),
    ("longtask_max_ms", "longest task (ms)", "{:.0f}"),
    ("longtask_total_ms", "long tasks, total (ms)", "{:.0f}"),
    ("render_median_ms", "page's frame callbacks, median (ms)", "{:.2f}"),
    ("render_max_ms", "page's frame callbacks, max (ms)", "{:.1f}"),
    ("event_to_row_median_ms", "event on socket -> row shown, median (ms)", "{:.1f}"),
    ("event_to_row_p95_ms", "event on socket -> row shown, p95 (ms)", "{:.1f}"),
    ("event_to_row_max_ms", "event on socket -> row shown, max (ms)", "{:.1f}"),
    ("events", "events received", "{:.0f}"),
    ("events_shown", "events written into a row in the DOM", "{:.0f}"),
    ("filter_ms", "apply a status filter (ms)", "{:.1f}"),
    ("unfilter_ms", "clear the filter (ms)", "{:.1f}"),
    ("scroll_ms", "scroll top to bottom (ms)", "{:.0f}"),
    ("scroll_frame_p95_ms", "frame interval p95 while scrolling (ms)", "{:.1f}"),
    ("scroll_frame_max_ms", "frame interval max while scrolling (ms)", "{:.1f}"),
    ("rows_in_dom", "rows in the DOM at the bottom", "{:.0f}"),
    ("rows_in_order", "bottom rows in the board's order (1 = yes)", "{:.0f}"),
]
SCENARIOS = {
    "burst": (
        burst_run,
        [
            *COMMON,
            ("post_s", "POSTing the orders (s)", "{:.1f}"),
            ("stream_s", "first POST -> every row final (s)", "{:.1f}"),
        ],
    ),
    "steady": (
        steady_run,
        [
            *COMMON,
            ("history_s", "connect -> history of every order shown (s)", "{:.1f}"),
            ("live_orders", "live orders placed while measuring", "{:.0f}"),
        ],
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["burst", "steady", "both"], default="both")
    parser.add_argument("--orders", type=int, default=1000, help="orders per run (max 2000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (max 5)")
    parser.add_argument("--pace", type=float, default=10, help="steady: live orders a second (max 50)")
    parser.add_argument("--seconds", type=float, default=30, help="steady: seconds of live orders (max 120)")
    parser.add_argument("--page-from", type=Path, help="serve the page's files from this folder instead")
    parser.add_argument("--profile", action="store_true", help="trace the first run of each scenario")
    opts = parser.parse_args()
    orders, runs = max(1, min(opts.orders, 2000)), max(1, min(opts.runs, 5))
    opts.pace = max(0.1, min(opts.pace, 50))
    opts.seconds = max(1.0, min(opts.seconds, 120))
    scenarios = ["burst", "steady"] if opts.scenario == "both" else [opts.scenario]
    from playwright.sync_api import sync_playwright

    results: dict[str, list[dict[str, float]]] = {name: [] for name in scenarios}
    profiles: dict[str, list[tuple[str, float, int]]] = {}
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
                browser = launch(playwright)
                for name in scenarios:
                    run_one = SCENARIOS[name][0]
                    for run in range(runs):
                        figures = run_one(browser, engine, orders, opts, opts.profile and run == 0)
                        trace = figures.pop("_trace", None)
                        if trace is not None:
                            profiles[name] = busiest(trace)  # type: ignore[arg-type]
                            for key, ms, count in profiles[name]:
                                print(f"  {ms:9.0f} ms {count:7d}x  {key[:90]}", flush=True)
                            print("  inside the tasks over 50 ms:")
                            for key, ms, count in busiest(trace, 10, over_ms=50):  # type: ignore[arg-type]
                                print(f"  {ms:9.0f} ms {count:7d}x  {key[:90]}", flush=True)
                        results[name].append(figures)
                        keys = ("frame_p95_ms", "longtask_total_ms", "longtask_max_ms")
                        shown = ", ".join(f"{key} {figures[key]:.1f}" for key in keys)
                        print(f"{name} run {run + 1}: {shown}", flush=True)
                browser.close()
        finally:
            engine.stop()
            delete_prefix(redis_url, engine.prefix)
    for name in scenarios:
        what = (
            f"{orders} orders streaming onto an empty board"
            if name == "burst"
            else f"{orders} finished orders on the board, live ones at {opts.pace:g}/s for {opts.seconds:g} s"
        )
        print(f"\n{name}: {what}, median of {runs} runs:")
        for key, label, fmt in SCENARIOS[name][1]:
            print(f"  {label:<45} {fmt.format(statistics.median(r[key] for r in results[name]))}")
        if name in profiles:
            print("  main thread, busiest trace events of run 1 (self ms, count):")
            for key, ms, count in profiles[name]:
                print(f"    {ms:9.0f} {count:7d}  {key[:90]}")


if __name__ == "__main__":
    main()

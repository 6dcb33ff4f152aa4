"""Recovery drills at full size: how long the engine takes to resume after a fault.

    .venv/bin/python -m tests.benchmarks.recovery [--runs 3] [--orders 30] [--drills worker,redis]

- **worker crash**: `--orders` market orders on the brief's DEX delays, then the worker
  is killed with SIGKILL as soon as it holds some of them mid-step; measured: from the
  kill to the first event any of the dead worker's orders records (they resume), and to
  the last order ending.
- **Postgres restart**: an idle engine on a Postgres of its own, which is restarted
  (`pg_ctl restart -m fast`, and `-m immediate`: backends killed, crash recovery); then
  POSTs back to back: how many were not 200, and the time from the restart's end to the
  first 200.
- **Postgres outage**: Postgres stopped for 10 s: how long POSTs took to be answered
  (503) while it was down, and the time from its start to the first 200.
- **API crash**: `--orders` orders each followed on its WebSocket, the API killed with
  SIGKILL once every client is following and some order is mid-step; measured: from the
  kill to the restarted API's first 200, and whether every client ended with every event
  of its order exactly once.
- **Redis outage**: `--orders` orders in flight, Redis unreachable for 10 s (a proxy
  drops every connection), the stuck-order re-driver off; measured: from Redis back to
  the first 200 and to the last order ending; none swapped twice.

Every run checks that each accepted order ended confirmed. Prints one line per run and
the medians (min-max); `--out` writes them into docs/reliability.md between markers.
Talks only to 127.0.0.1; bounded by `--orders` and `--runs`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import psycopg
import redis

from adapters.redis_layout import RedisLayout
from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.e2e.engine import Engine
from tests.e2e.own_postgres import own_postgres
from tests.e2e.ws_follower import api_process, follow, until_following_mid_step
from tests.tcp_proxy import CuttableProxy

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- recovery:begin -->", "<!-- recovery:end -->"


def post(engine: Engine, user: str, timeout: float = 30) -> tuple[int, float]:
    body = {"userId": user, "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5"}
    started = time.monotonic()
    try:
        status = httpx.post(f"{engine.base_url}/api/orders/execute", json=body, timeout=timeout).status_code
    except httpx.HTTPError:
        status = 0
    return status, time.monotonic() - started


def recorded_after(
    database_url: str, order_ids: list[str], instant: datetime, types: tuple[str, ...] | None = None
) -> list[datetime]:
    """When the orders' events (of `types`, or any) after `instant` were recorded."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT recorded_at FROM events WHERE stream_id = ANY(%s) AND recorded_at > %s"
            " AND (%s::text[] IS NULL OR type = ANY(%s)) ORDER BY recorded_at",
            (order_ids, instant, list(types) if types else None, list(types) if types else None),
        ).fetchall()
    return [r[0] for r in rows]


@contextmanager
def engine_on(database_url: str, redis_url: str, **env: str) -> Iterator[Engine]:
    engine = Engine(
        database_url, redis_url, **{"MOCK_LATENCY_SCALE": "1", "LOG_LEVEL": "WARNING", **env}
    ).start()
    try:
        yield engine
    except BaseException:
        engine.stop()
        print(f"the drill failed; the engine's log is kept: {engine.log_path}", file=sys.stderr)
        raise
    else:
        engine.stop()
        engine.log_path.unlink(missing_ok=True)
    finally:
        with suppress(redis.RedisError):
            delete_prefix(redis_url, engine.prefix)


def worker_crash(orders: int) -> dict[str, float]:
    with (
        scratch_servers() as (database_url, redis_url),
        engine_on(
            database_url, redis_url, STUCK_AFTER_S="600", WORKER_HEARTBEAT_TIMEOUT_MS="60000"
        ) as engine,
    ):
        ids = [post_body(engine, i) for i in range(orders)]
        engine.wait_executing(ids)
        victim = engine.worker_process()
        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        for order_id in ids:
            order = engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=300)
            if order["status"] != "confirmed":
                raise AssertionError(f"order {order_id} ended {order['status']}")
        ended = time.monotonic() - killed
        after = recorded_after(database_url, ids, killed_at)
        resumed = (after[0] - killed_at).total_seconds() if after else float("nan")
        return {"resumed s": resumed, "all ended s": ended}


def post_body(engine: Engine, i: int) -> str:
    response = httpx.post(
        f"{engine.base_url}/api/orders/execute",
        json={
            "userId": f"crash-{i % 5}",
            "orderType": "market",
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amount": "0.5",
        },
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["orderId"])


def until_served(engine: Engine, limit_s: float = 60) -> tuple[float, int]:
    """Seconds to the first 200, and how many answers were not 200 before it."""
    started, failures = time.monotonic(), 0
    while time.monotonic() - started < limit_s:
        status, _ = post(engine, "probe", timeout=10)
        if status == 200:
            return time.monotonic() - started, failures
        failures += 1
        time.sleep(0.05)
    raise AssertionError(f"not served within {limit_s} s")


def postgres_restart(mode: str) -> dict[str, float]:
    with scratch_servers() as (_, redis_url), own_postgres() as pg, engine_on(pg.url, redis_url) as engine:
        assert post(engine, "warm")[0] == 200
        time.sleep(1.5)  # idle: every pooled connection is one the restart kills
        pg.restart(mode)
        served_s, failures = until_served(engine)
        return {"first 200 after the restart s": served_s, "answers not 200": failures}


def postgres_outage(seconds: float = 10) -> dict[str, float]:
    with scratch_servers() as (_, redis_url), own_postgres() as pg, engine_on(pg.url, redis_url) as engine:
        assert post(engine, "warm")[0] == 200
        pg.stop()
        waits: list[float] = []
        statuses: list[int] = []
        down_until = time.monotonic() + seconds
        while time.monotonic() < down_until:
            status, took = post(engine, "down", timeout=30)
            statuses.append(status)
            waits.append(took)
        pg.start()
        served_s, _ = until_served(engine)
        answered_503 = sum(s == 503 for s in statuses)
        return {
            "answer while down, max s": max(waits[1:] or waits),
            "answers while down that were 503 %": 100 * answered_503 / len(statuses),
            "first 200 after the start s": served_s,
        }


def api_crash(orders: int) -> dict[str, float]:
    with scratch_servers() as (database_url, redis_url), engine_on(database_url, redis_url) as engine:
        ids = [post_body(engine, i) for i in range(orders)]
        streams: dict[str, list[dict[str, Any]]] = {order_id: [] for order_id in ids}
        back: list[float] = []

        async def scenario() -> None:
            async with anyio.create_task_group() as tg:
                for order_id, seen in streams.items():
                    tg.start_soon(follow, engine, order_id, seen)
                await until_following_mid_step(streams, timeout=180)  # hundreds of handshakes
                killed = time.monotonic()
                api_process(engine).send_signal(signal.SIGKILL)
                with anyio.fail_after(120 + orders):  # the orders still to run, at 100 a minute
                    while True:
                        try:
                            async with httpx.AsyncClient() as client:
                                if (
                                    await client.get(f"{engine.base_url}/healthz", timeout=1)
                                ).status_code == 200:
                                    break
                        except httpx.HTTPError:
                            pass
                        await anyio.sleep(0.05)
                    back.append(time.monotonic() - killed)
                    while any(
                        not s or s[-1]["status"] not in ("confirmed", "failed") for s in streams.values()
                    ):
                        await anyio.sleep(0.1)

        anyio.run(scenario)
        exact = 0
        for order_id, seen in streams.items():
            log = httpx.get(f"{engine.base_url}/api/orders/{order_id}/events", timeout=10).json()["events"]
            expected = [(e["version"], e["type"]) for e in log if e["type"] != "SwapRequested"]
            exact += [(m["version"], m["type"]) for m in seen] == expected
        return {"API back s": back[0], "clients with every event once %": 100 * exact / len(streams)}


def redis_outage(orders: int, seconds: float = 10) -> dict[str, float]:
    with scratch_servers() as (database_url, redis_url):
        parts = urlsplit(redis_url)
        proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
        try:
            proxied = f"redis://127.0.0.1:{proxy.port}{parts.path or '/0'}"
            # The re-driver is off: what is measured is the worker carrying on by itself.
            with engine_on(database_url, proxied, STUCK_AFTER_S="600") as engine:
                ids = [post_body(engine, i) for i in range(orders)]
                engine.wait_executing(ids)
                proxy.cut()
                time.sleep(seconds)
                proxy.restore()
                restored, restored_at = time.monotonic(), datetime.now(UTC)
                served_s, _ = until_served(engine)
                for order_id in ids:
                    order = engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=300)
                    if order["status"] != "confirmed":
                        raise AssertionError(f"order {order_id} ended {order['status']}")
                ended = time.monotonic() - restored
                chain = redis.Redis.from_url(redis_url, decode_responses=True)
                try:
                    twice = sum(chain.scard(RedisLayout(engine.prefix).mockchain_swaps(i)) != 1 for i in ids)
                finally:
                    chain.close()
                # A step handed on through the queue after Redis was back: execution resumed.
                handed_on = recorded_after(
                    database_url, ids, restored_at, ("OrderRouting", "OrderBuilding", "OrderSubmitted")
                )
                return {
                    "first 200 after Redis is back s": served_s,
                    "resumed s": (handed_on[0] - restored_at).total_seconds() if handed_on else float("nan"),
                    "all ended s": ended,
                    "swapped twice": twice,
                }
        finally:
            proxy.close()


DRILLS = ("worker", "pg-restart", "pg-immediate", "pg-outage", "api", "redis")


def median_line(name: str, values: list[float]) -> str:
    clean = [v for v in values if v == v]
    if not clean:
        return f"{name}: –"
    return f"{name}: {statistics.median(clean):.2f} ({min(clean):.2f}–{max(clean):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orders", type=int, default=30)
    parser.add_argument(
        "--out", type=Path, default=None, help="write the figures into this file (docs/reliability.md)"
    )
    parser.add_argument(
        "--drills",
        default=",".join(DRILLS),
        help=f"which drills, comma-separated (default: all of {','.join(DRILLS)})",
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 10 or not 1 <= args.orders <= 500:
        print("recovery: --runs must be 1-10 and --orders 1-500", file=sys.stderr)
        return 2
    chosen = [d.strip() for d in args.drills.split(",") if d.strip()]
    if not chosen or any(d not in DRILLS for d in chosen):
        print(f"recovery: --drills takes some of {','.join(DRILLS)}", file=sys.stderr)
        return 2
    every: dict[str, tuple[str, Callable[[], dict[str, float]]]] = {
        "worker": ("worker crash", lambda: worker_crash(args.orders)),
        "pg-restart": ("Postgres restart (fast)", lambda: postgres_restart("fast")),
        "pg-immediate": ("Postgres restart (immediate)", lambda: postgres_restart("immediate")),
        "pg-outage": ("Postgres outage (10 s)", postgres_outage),
        "api": ("API crash", lambda: api_crash(args.orders)),
        "redis": ("Redis outage (10 s)", lambda: redis_outage(args.orders)),
    }
    drills = dict(every[d] for d in DRILLS if d in chosen)
    results: dict[str, dict[str, list[float]]] = {}
    for run in range(1, args.runs + 1):
        for name, drill in drills.items():
            figures = drill()
            print(f"{name} run {run}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), flush=True)
            for key, value in figures.items():
                results.setdefault(name, {}).setdefault(key, []).append(value)
    lines = [
        f"`.venv/bin/python -m tests.benchmarks.recovery --runs {args.runs} --orders {args.orders}"
        f"{'' if len(chosen) == len(DRILLS) else ' --drills ' + ','.join(chosen)}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; "
        f"medians (min–max) of {args.runs} runs.",
        "",
    ]
    for name, figures in results.items():
        lines.append(f"- **{name}**: " + "; ".join(median_line(k, v) for k, v in figures.items()))
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        document = args.out.read_text() if args.out.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
        head, _, rest = document.partition(BEGIN)
        _, _, tail = rest.partition(END)
        args.out.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

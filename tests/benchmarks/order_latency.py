"""Time from POST /api/orders/execute to the `confirmed` WebSocket message, one
order at a time, on the real engine (API + worker + scheduler processes).

    .venv/bin/python -m tests.benchmarks.order_latency --scale 1 --orders 5
    .venv/bin/python -m tests.benchmarks.order_latency --scale 0 --orders 50 --rate 100000

Prints each run's median and p90 and the median of the run medians. Only talks
to 127.0.0.1; the number of orders is bounded by the arguments.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import anyio
import httpx
import websockets

from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.e2e.engine import Engine

BODY = {"userId": "bench", "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}


async def one_order(client: httpx.AsyncClient, ws_base: str) -> float:
    started = time.perf_counter()
    response = await client.post("/api/orders/execute", json=BODY)
    order_id = response.json()["orderId"]
    async with websockets.connect(f"{ws_base}/ws?orderId={order_id}") as ws:
        async for raw in ws:
            status = json.loads(raw)["status"]
            if status in {"confirmed", "failed"}:
                if status != "confirmed":
                    raise RuntimeError(f"order {order_id} failed: {raw}")
                return time.perf_counter() - started
    raise RuntimeError("stream ended before the order did")


async def measure(engine: Engine, orders: int) -> list[float]:
    ws_base = engine.base_url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=30) as client:
        await one_order(client, ws_base)  # warm-up: connections, imports, first quotes
        return [await one_order(client, ws_base) for _ in range(orders)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1", help="MOCK_LATENCY_SCALE (1 = the brief's delays, 0 = none)")
    parser.add_argument("--orders", type=int, default=5, help="orders per run (max 500)")
    parser.add_argument("--runs", type=int, default=3, help="runs (max 10)")
    parser.add_argument("--idle-ms", default="100", help="WORKER_IDLE_MS")
    parser.add_argument(
        "--rate", default="100", help="ORDER_PROCESSOR_RATE; raise it for long zero-latency runs"
    )
    args = parser.parse_args()
    orders, runs = min(args.orders, 500), min(args.runs, 10)
    medians = []
    with scratch_servers() as (database_url, redis_url):
        engine = Engine(
            database_url,
            redis_url,
            MOCK_LATENCY_SCALE=args.scale,
            WORKER_IDLE_MS=args.idle_ms,
            ORDER_PROCESSOR_RATE=args.rate,
            LOG_LEVEL="WARNING",
        ).start()
        try:
            for run in range(runs):
                times = sorted(anyio.run(measure, engine, orders))
                median = statistics.median(times)
                p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
                medians.append(median)
                print(f"run {run + 1}: {orders} orders, median {median * 1e3:.1f} ms, p90 {p90 * 1e3:.1f} ms")
        finally:
            engine.stop()
            delete_prefix(redis_url, engine.prefix)
    print(
        f"POST -> confirmed, MOCK_LATENCY_SCALE={args.scale}, WORKER_IDLE_MS={args.idle_ms}, "
        f"ORDER_PROCESSOR_RATE={args.rate}: "
        f"median of {runs} run medians {statistics.median(medians) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()

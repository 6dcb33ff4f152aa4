"""Retries, permanent failures and the concurrency limit, on the real worker."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import anyio
import psycopg
import pytest
import websockets

from tests.e2e.engine import Engine

pytestmark = pytest.mark.e2e


def _history(database_url: str, order_id: str) -> list[tuple[str, dict[str, object], datetime]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT type, data, recorded_at FROM events WHERE stream_id = %s ORDER BY version", (order_id,)
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_failure_on_first_attempt_is_retried_then_succeeds(
    start_engine: Callable[..., Engine], database_url: str
) -> None:
    engine = start_engine(MOCK_FAIL_FIRST_N="1")
    order_id = engine.submit()
    order = engine.wait_for_status(order_id, {"confirmed", "failed"})
    assert order["status"] == "confirmed", order
    assert order["attempts"] == 2
    types = [t for t, _, _ in _history(database_url, order_id)]
    assert types == [
        "OrderPending",
        "OrderRouting",
        "OrderBuilding",
        "SwapRequested",
        "RetryScheduled",
        "OrderSubmitted",
        "OrderConfirmed",
    ]
    retry = _history(database_url, order_id)[4][1]
    assert retry["step"] == "submit" and retry["attempt"] == 1 and int(retry["delay_ms"]) >= 50  # type: ignore[call-overload]


def test_persistent_failure_ends_failed_with_error_and_attempts(
    start_engine: Callable[..., Engine], database_url: str
) -> None:
    engine = start_engine(MOCK_FAIL_RATE="1", MAX_RETRIES="3")
    order_id = engine.submit()
    order = engine.wait_for_status(order_id, {"confirmed", "failed"})
    assert order["status"] == "failed"
    assert order["attempts"] == 3
    assert "RPC error" in order["lastError"] and "3 attempts" in order["lastError"]
    history = _history(database_url, order_id)
    retries = [data for t, data, _ in history if t == "RetryScheduled"]
    assert [r["attempt"] for r in retries] == [1, 2]
    delays = [int(r["delay_ms"]) for r in retries]  # type: ignore[call-overload]
    assert delays[1] > delays[0]  # exponential backoff between attempts
    assert history[-1][0] == "OrderFailed"


def test_simultaneous_orders_never_exceed_the_concurrency_limit(
    start_engine: Callable[..., Engine], database_url: str
) -> None:
    # Swaps of 200–300 ms make the orders overlap unless the limit holds them back.
    engine = start_engine(QUEUE_MAX_CONCURRENT="2", MOCK_LATENCY_SCALE="0.1")
    order_ids = [engine.submit(userId=f"conc-{i}") for i in range(5)]
    for order_id in order_ids:
        assert engine.wait_for_status(order_id, {"confirmed", "failed"})["status"] == "confirmed"
    intervals = []
    for order_id in order_ids:
        history = _history(database_url, order_id)
        started = next(at for t, _, at in history if t == "OrderRouting")
        intervals.append((started, history[-1][2]))
    # The most orders between routing and their end at any instant.
    edges = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    assert peak <= 2
    assert peak == 2  # the limit was actually reached, so the check above meant something


def test_start_rate_limit_holds_orders_pending_and_subscribers_stay_connected(
    start_engine: Callable[..., Engine],
) -> None:
    engine = start_engine(ORDER_PROCESSOR_RATE="1")
    first = engine.submit(userId="rate-1")
    assert engine.wait_for_status(first, {"confirmed", "failed"})["status"] == "confirmed"
    second = engine.submit(userId="rate-2")

    async def watch() -> list[dict[str, object]]:
        url = engine.base_url.replace("http://", "ws://") + f"/ws?orderId={second}"
        received: list[dict[str, object]] = []
        async with websockets.connect(url) as ws:
            # Longer than Redis's 5 s client timeout: the quiet subscription must survive it.
            with anyio.move_on_after(6.5):
                async for raw in ws:
                    received.append(json.loads(raw))
            assert ws.close_code is None, f"closed with {ws.close_code} {ws.close_reason}"
        return received

    received = anyio.run(watch)
    assert [m["status"] for m in received] == ["pending"]
    assert engine.order(second)["status"] == "pending"  # the minute's one start is used up

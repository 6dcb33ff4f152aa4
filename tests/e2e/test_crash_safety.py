"""A worker killed with SIGKILL in the middle of a swap loses no order and swaps once."""

from __future__ import annotations

import signal
from collections.abc import Callable

import psycopg
import pytest
import redis

from tests.e2e.engine import Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def event_types(database_url: str, order_id: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT type FROM events WHERE stream_id = %s ORDER BY version", (order_id,))
        return [r[0] for r in rows]


def test_worker_killed_mid_swap_loses_no_order_and_never_swaps_twice(
    start_engine: Callable[..., Engine], own_database_url: str, redis_url: str
) -> None:
    database_url = own_database_url
    # Swaps of 4–6 s (0.8–1.2 s of it sending): a wide window to kill the worker in.
    # Stuck orders are re-driven after 2 s, so the test needs no Dramatiq heartbeat expiry.
    engine = start_engine(database_url, MOCK_LATENCY_SCALE="2", STUCK_AFTER_S="2", STUCK_CHECK_INTERVAL_S="1")
    try:
        check_crash_recovery(engine, database_url, redis_url)
    finally:
        engine.stop()  # before its database is dropped


def check_crash_recovery(engine: Engine, database_url: str, redis_url: str) -> None:
    order_id = engine.submit(userId="crash")

    chain = redis.Redis.from_url(redis_url, decode_responses=True)
    executed_key = f"{engine.prefix}:mockchain:swaps:{order_id}"

    def swap_sent_not_recorded() -> bool:
        # The dangerous moment: the swap is out on the "chain", the log has no tx hash yet.
        types = event_types(database_url, order_id)
        return "OrderSubmitted" not in types and bool(chain.scard(executed_key))

    wait_until(swap_sent_not_recorded, 30, interval=0.005, what="the swap to be sent and not yet recorded")
    victim = engine.worker_process()
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)

    order = engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=60)
    assert order["status"] == "confirmed", order
    types = event_types(database_url, order_id)
    assert types.count("SwapRequested") == 1
    assert types.count("OrderSubmitted") == 1
    assert types.count("OrderConfirmed") == 1
    # The mock chain saw one signature executed for this order: the re-sent swap was deduplicated.
    try:
        executed = chain.smembers(executed_key)
    finally:
        chain.close()
    assert len(executed) == 1 and order["txHash"] in executed
    assert engine.worker_process().pid != victim.pid  # the supervisor started a new worker
    assert "restarting it" in engine.log()

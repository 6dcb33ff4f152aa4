"""A killed worker's orders resume as soon as a new worker runs, not after the heartbeat
timeout: the new worker gives the dead one's messages back to their queues at boot."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable

import psutil
import pytest

from tests.e2e.engine import Engine

pytestmark = pytest.mark.e2e


def test_orders_of_a_killed_worker_resume_when_its_replacement_boots(
    start_engine: Callable[..., Engine], own_database_url: str
) -> None:
    # Ten minutes of heartbeat timeout and no re-driving: without the reclaim at boot the
    # dead worker's orders would stand still far longer than this test waits.
    engine = start_engine(
        own_database_url,
        MOCK_LATENCY_SCALE="1",
        MOCK_QUOTE_MIN_MS="50",
        MOCK_QUOTE_MAX_MS="100",
        MOCK_SWAP_MIN_MS="2000",
        MOCK_SWAP_MAX_MS="3000",
        WORKER_HEARTBEAT_TIMEOUT_MS="600000",
        STUCK_AFTER_S="600",
    )
    try:
        orders = [engine.submit(userId=f"recover-{i}", amount="0.5") for i in range(12)]
        engine.wait_executing(orders)
        victim = engine.worker_process()
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        later = engine.submit(userId="recover-late", amount="0.5")  # placed while it is down

        for order_id in [*orders, later]:
            order = engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=60)
            assert order["status"] == "confirmed", order
        assert "reclaimed the messages of a dead worker" in engine.log_path.read_text(errors="replace")
        assert engine.worker_process().pid != victim.pid
        engine.assert_executed_once([*orders, later])
        assert engine.audit()["divergences"] == []
    finally:
        engine.stop()


def test_orders_in_flight_when_the_whole_engine_is_killed_resume_when_it_starts_again(
    start_engine: Callable[..., Engine], own_database_url: str
) -> None:
    settings = {
        "MOCK_LATENCY_SCALE": "1",
        "MOCK_QUOTE_MIN_MS": "50",
        "MOCK_QUOTE_MAX_MS": "100",
        "MOCK_SWAP_MIN_MS": "2000",
        "MOCK_SWAP_MAX_MS": "3000",
        "WORKER_HEARTBEAT_TIMEOUT_MS": "600000",
        "STUCK_AFTER_S": "600",
    }
    first = start_engine(own_database_url, **settings)
    orders = [first.submit(userId=f"restart-{i}", amount="0.5") for i in range(8)]
    first.wait_executing(orders)
    assert first.proc is not None
    everything = [first.proc, *psutil.Process(first.proc.pid).children(recursive=True)]
    for process in everything:  # kill -9 of the supervisor and every child at once
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(process.pid).send_signal(signal.SIGKILL)
    first.proc.wait(10)

    second = start_engine(own_database_url, REDIS_PREFIX=first.prefix, **settings)
    try:
        for order_id in orders:
            order = second.wait_for_status(order_id, {"confirmed", "failed"}, timeout=60)
            assert order["status"] == "confirmed", order
        assert "reclaimed the messages of a dead worker" in second.log_path.read_text(errors="replace")
        second.assert_executed_once(orders)
        assert second.audit()["divergences"] == []
    finally:
        second.stop()

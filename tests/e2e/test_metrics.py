"""GET /metrics on the real engine: the API shows the worker's and the scheduler's metrics
(multiprocess mode wired by the supervisor) beside the gauges it reads at scrape time."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.settings import load_settings
from tests.e2e.engine import Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(engine: Engine) -> Samples:
    response = httpx.get(f"{engine.base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def settled(engine: Engine) -> Callable[[], Samples | None]:
    """A scrape once the order's last event is counted, relayed and its message acked."""

    def check() -> Samples | None:
        samples = scrape(engine)
        done = (
            get(samples, "orderengine_orders_confirmed_total", order_type="market", dex="raydium")
            or get(samples, "orderengine_orders_confirmed_total", order_type="market", dex="meteora")
        ) and get(samples, "orderengine_outbox_lag_events") == 0
        idle = all(
            get(samples, "orderengine_queue_depth", queue=q, state=s) == 0
            for q in ("orders", "orders_priority")
            for s in ("ready", "unacked", "delayed")
        )
        return samples if done and idle else None

    return check


def child(engine: Engine, name: str) -> psutil.Process:
    assert engine.proc is not None
    for process in psutil.Process(engine.proc.pid).children():
        if name in process.cmdline():
            return process
    raise AssertionError(f"no {name} process under the supervisor")


def test_one_confirmed_order_shows_in_every_process_metrics(
    start_engine: Callable[..., Engine], own_database_url: str
) -> None:
    # A database of its own: this engine's scheduler alone projects (and counts) the log.
    engine = start_engine(own_database_url)
    try:
        order_id = engine.submit()
        order = engine.wait_for_status(order_id, {"confirmed", "failed"})
        assert order["status"] == "confirmed", order
        samples = wait_until(settled(engine), 30, interval=0.2, what="the order to show in /metrics")

        # Counted by the scheduler (the orders projection).
        assert get(samples, "orderengine_orders_accepted_total", order_type="market") == 1
        dex = order["chosenDex"]
        assert get(samples, "orderengine_orders_confirmed_total", order_type="market", dex=dex) == 1
        assert get(samples, "orderengine_order_end_to_end_seconds_count", order_type="market") == 1
        assert (get(samples, "orderengine_order_end_to_end_seconds_sum", order_type="market") or 0) > 0
        # Timed in the worker process.
        for step in ("route", "build", "submit", "confirm"):
            assert get(samples, "orderengine_step_duration_seconds_count", step=step, outcome="ok") == 1
            bucket = get(
                samples, "orderengine_step_duration_seconds_bucket", step=step, outcome="ok", le="+Inf"
            )
            assert bucket == 1
        # Counted in the API process, by route template.
        labels = {"method": "POST", "route": "/api/orders/execute", "status": "200"}
        assert get(samples, "orderengine_http_requests_total", **labels) == 1
        polled = {"method": "GET", "route": "/api/orders/{order_id}", "status": "200"}
        assert (get(samples, "orderengine_http_requests_total", **polled) or 0) >= 1
        # Read at scrape time: nothing left in flight, queued or unrelayed.
        for status in ("pending", "waiting", "routing", "building", "submitted"):
            assert get(samples, "orderengine_orders_in_flight", status=status) == 0
        assert get(samples, "orderengine_execution_slots_in_use") == 0
        assert get(samples, "orderengine_outbox_lag_seconds") == 0
        assert get(samples, "orderengine_projection_lag_events", projection="orders") == 0
        assert get(samples, "orderengine_scheduler_leader") == 1
        assert get(samples, "orderengine_websocket_connections") == 0
        assert get(samples, "orderengine_metrics_source_up", source="postgres") == 1
        assert get(samples, "orderengine_metrics_source_up", source="redis") == 1
    finally:
        engine.stop()  # before its database is dropped


def test_a_restarted_process_keeps_its_totals_and_drops_its_live_gauges(
    start_engine: Callable[..., Engine], own_database_url: str
) -> None:
    engine = start_engine(own_database_url)
    try:
        order_id = engine.submit()
        engine.wait_for_status(order_id, {"confirmed"})
        wait_until(settled(engine), 30, interval=0.2, what="the order to show in /metrics")
        assert engine.proc is not None
        metrics_dir = load_settings(engine.env).metrics_path / f"engine-{engine.proc.pid}"
        old = child(engine, "scheduler")
        assert (metrics_dir / f"gauge_livesum_{old.pid}.db").exists()

        old.send_signal(signal.SIGKILL)
        old.wait(10)

        def new_leader() -> Samples | None:
            samples = scrape(engine)
            log = engine.log_path.read_text(errors="replace")
            restarted = log.count("log followers: took the lock") >= 2
            return samples if restarted and get(samples, "orderengine_scheduler_leader") == 1 else None

        samples = wait_until(new_leader, 30, interval=0.2, what="a restarted scheduler to lead")
        # The supervisor marked the killed scheduler dead: its leader gauge no longer counts...
        assert not (metrics_dir / f"gauge_livesum_{old.pid}.db").exists()
        # ...and the counters it took stay, as totals must.
        assert get(samples, "orderengine_orders_accepted_total", order_type="market") == 1
    finally:
        engine.stop()

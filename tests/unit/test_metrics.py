"""adapters/metrics.py: exposition in single- and multiprocess mode; the supervisor's
metrics directories; the lifecycle counts the orders projection takes."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from adapters import metrics
from api.supervisor import MetricsDir, remove_stale_metrics_dirs
from domain.events import Event, OrderConfirmed, OrderFailed, OrderPending, RetryScheduled
from domain.order import OrderState
from domain.ports import EventMetadata, RecordedEvent
from domain.services.execution import Outcome
from projections.orders_projection import count_lifecycle
from workers.actors import outcome_label

REPO = Path(__file__).resolve().parents[2]

# What one engine process does to its metrics, run in a fresh interpreter so that
# PROMETHEUS_MULTIPROC_DIR is in its environment before prometheus_client is imported.
_CHILD = """
from adapters import metrics
metrics.ORDERS_ACCEPTED.labels(order_type="market").inc()
metrics.observe_step("route", "ok", 0.02)
metrics.websocket_opened()
import os
print(os.getpid())
"""


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def sample(name: str, **labels: str) -> float:
    """This process's value (single-process mode: the test process has no metrics directory)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def run_child(directory: Path) -> int:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def test_multiprocess_exposition_sums_every_process(tmp_path: Path) -> None:
    first, _ = run_child(tmp_path), run_child(tmp_path)
    text = metrics.render(directory=str(tmp_path))[0].decode()
    assert value(text, "orderengine_orders_accepted_total", order_type="market") == 2
    assert value(text, "orderengine_step_duration_seconds_count", step="route", outcome="ok") == 2
    assert value(text, "orderengine_websocket_connections") == 2
    # A dead process's live gauges go; its counters stay, as totals must.
    mark_process_dead(first, str(tmp_path))
    text = metrics.render(directory=str(tmp_path))[0].decode()
    assert value(text, "orderengine_websocket_connections") == 1
    assert value(text, "orderengine_orders_accepted_total", order_type="market") == 2
    assert value(text, "orderengine_step_duration_seconds_count", step="route", outcome="ok") == 2


def test_single_process_exposition_shows_this_process_and_the_scrape_readings() -> None:
    before = sample("orderengine_http_requests_total", method="GET", route="/unit", status="200")
    metrics.observe_http_request("GET", "/unit", 200, 0.01)
    reading = GaugeMetricFamily("orderengine_unit_reading", "A scrape-time reading.", value=7)
    body, content_type = metrics.render([reading], directory="")
    text = body.decode()
    assert value(text, "orderengine_http_requests_total", method="GET", route="/unit", status="200") == (
        before + 1
    )
    assert value(text, "orderengine_unit_reading") == 7
    assert content_type.startswith("text/plain")


def test_openmetrics_is_served_to_a_client_that_asks_for_it() -> None:
    body, content_type = metrics.render(directory="", accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_websocket_gauge_goes_back_down_when_the_block_fails() -> None:
    start = sample("orderengine_websocket_connections")
    try:
        with metrics.websocket_connection():
            assert sample("orderengine_websocket_connections") == start + 1
            raise ConnectionResetError
    except ConnectionResetError:
        pass
    assert sample("orderengine_websocket_connections") == start


def test_step_outcome_labels_name_what_the_actor_does_next() -> None:
    assert outcome_label(Outcome(next_step="build")) == "ok"
    assert outcome_label(Outcome()) == "ok"
    assert outcome_label(Outcome(retry_in_ms=100)) == "retry"
    assert outcome_label(Outcome(defer_ms=300)) == "deferred"


# -- the supervisor's metrics directories --


def test_a_run_gets_an_empty_directory_that_release_removes(tmp_path: Path) -> None:
    run = MetricsDir.claim(tmp_path / "metrics")
    assert run.path.parent == tmp_path / "metrics"
    assert [p.name for p in run.path.iterdir()] == [".lock"]
    run.release()
    assert not run.path.exists()


def test_a_dead_engines_directory_is_removed_and_a_running_ones_kept(tmp_path: Path) -> None:
    root = tmp_path / "metrics"
    running = MetricsDir.claim(root)
    dead = root / "engine-999999"
    dead.mkdir()
    (dead / ".lock").touch()  # nobody holds its lock: that engine is gone
    (dead / "counter_999999.db").write_bytes(b"old")
    try:
        assert remove_stale_metrics_dirs(root) == [dead]
        assert not dead.exists()
        assert running.path.exists()
    finally:
        running.release()


def test_a_directory_locked_by_another_process_survives_a_new_claim(tmp_path: Path) -> None:
    root = tmp_path / "metrics"
    other = root / "engine-1"
    other.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True)\n"
            "sys.stdin.read()",
            str(other / ".lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        run = MetricsDir.claim(root)
        assert other.exists()
        run.release()
    finally:
        holder.communicate("")


def test_the_lock_is_held_while_the_run_lives(tmp_path: Path) -> None:
    run = MetricsDir.claim(tmp_path)
    fd = os.open(run.path / ".lock", os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("the run's lock was free")
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
        run.release()


# -- lifecycle counts (the orders projection) --

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def recorded(event: Event, version: int, at: datetime) -> RecordedEvent:
    return RecordedEvent(
        position=version,
        stream_id="order-1",
        version=version,
        type=type(event).__name__,
        event=event,
        metadata=EventMetadata(correlation_id="order-1", causation_id="c", actor="test"),
        recorded_at=at,
    )


def test_lifecycle_counts_acceptance_confirmation_and_latency_by_type_and_dex() -> None:
    state = OrderState(order_id="order-1", status="confirmed", order_type="sniper", chosen_dex="meteora")
    placed = recorded(
        OrderPending(
            order_id="order-1",
            user_id="u",
            order_type="sniper",
            token_in="SOL",
            token_out="USDC",
            amount=Decimal(1),
            slippage_tolerance=Decimal("0.01"),
        ),
        1,
        T0,
    )
    confirmed = recorded(
        OrderConfirmed(tx_hash="tx", executed_price=Decimal(150), amount_out=Decimal(149)),
        6,
        T0 + timedelta(seconds=3),
    )
    accepted_before = sample("orderengine_orders_accepted_total", order_type="sniper")
    confirmed_before = sample("orderengine_orders_confirmed_total", order_type="sniper", dex="meteora")
    latency_before = sample("orderengine_order_end_to_end_seconds_sum", order_type="sniper")

    count_lifecycle(placed, state, placed.recorded_at)
    count_lifecycle(confirmed, state, placed.recorded_at)

    assert sample("orderengine_orders_accepted_total", order_type="sniper") == accepted_before + 1
    assert sample("orderengine_orders_confirmed_total", order_type="sniper", dex="meteora") == (
        confirmed_before + 1
    )
    assert sample("orderengine_order_end_to_end_seconds_sum", order_type="sniper") == latency_before + 3


def test_lifecycle_counts_retries_and_failures_by_step() -> None:
    state = OrderState(order_id="order-1", status="failed", order_type="limit")
    placed = recorded(RetryScheduled(step="submit", attempt=1, error="rpc", delay_ms=50), 1, T0)
    retries_before = sample("orderengine_retries_total", step="submit")
    failed_before = sample("orderengine_orders_failed_total", order_type="limit", step="submit")

    count_lifecycle(placed, state, placed.recorded_at)
    failed = recorded(OrderFailed(step="submit", error="rpc", attempts=3), 2, T0)
    count_lifecycle(failed, state, placed.recorded_at)

    assert sample("orderengine_retries_total", step="submit") == retries_before + 1
    assert sample("orderengine_orders_failed_total", order_type="limit", step="submit") == failed_before + 1

"""Cancelling orders: allowed until the swap is requested, decided by the log under races."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import anyio
import httpx
import psycopg
import pytest

from tests.e2e.engine import Engine
from tests.e2e.ws_client import collect

pytestmark = pytest.mark.e2e

_pause = threading.Event()


def cancel(engine: Engine, order_id: str) -> httpx.Response:
    return httpx.delete(f"{engine.base_url}/api/orders/{order_id}", timeout=10)


def test_waiting_limit_order_is_cancelled_and_a_repeat_cancel_answers_the_same(engine: Engine) -> None:
    order_id = engine.submit(orderType="limit", limitPrice="100000")
    engine.wait_for_status(order_id, {"waiting"})
    first, again = cancel(engine, order_id), cancel(engine, order_id)
    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == again.json()["status"] == "cancelled"
    order = engine.wait_for_status(order_id, {"cancelled"})
    assert (order["cancelReason"], order["cancelledBy"]) == ("cancelled by the user", "user")
    messages, close_code = anyio.run(collect, engine.base_url, order_id)
    statuses = [m["status"] for m in messages]  # a new best price is streamed as another "waiting"
    assert statuses == ["pending"] + ["waiting"] * (len(statuses) - 2) + ["cancelled"] and len(statuses) >= 3
    assert close_code == 1000


def test_cancel_after_confirmation_is_409_with_the_current_status(engine: Engine) -> None:
    order_id = engine.submit()
    engine.wait_for_status(order_id, {"confirmed"})
    response = cancel(engine, order_id)
    assert response.status_code == 409
    assert response.json()["error"]["status"] == "confirmed"


def test_cancel_of_an_unknown_order_is_404(engine: Engine) -> None:
    assert cancel(engine, "00000000-0000-4000-8000-000000000000").status_code == 404
    assert cancel(engine, "not-an-id").status_code == 404


def test_cancel_racing_execution_never_lets_both_win(
    start_engine: Callable[..., Engine], database_url: str
) -> None:
    # The swap is requested once routing's quotes (100–200 ms) are in; cancels sent 0–300 ms
    # after the order land on both sides of that.
    engine = start_engine(MOCK_LATENCY_SCALE="0.5")
    rng = random.Random(7)
    outcomes: dict[str, int] = {}
    for i in range(12):
        order_id = engine.submit(userId=f"race-{i}")
        _pause.wait(rng.uniform(0, 0.3))
        outcomes[order_id] = cancel(engine, order_id).status_code
    for order_id, code in outcomes.items():
        final = engine.wait_for_status(order_id, {"cancelled", "confirmed", "failed"})["status"]
        with psycopg.connect(database_url) as conn:
            types = {r[0] for r in conn.execute("SELECT type FROM events WHERE stream_id = %s", (order_id,))}
        assert code in (200, 409)
        if code == 200:
            assert final == "cancelled"
            assert not types & {"SwapRequested", "OrderSubmitted"}
        else:
            assert final != "cancelled" and "OrderCancelled" not in types
    assert 200 in outcomes.values() and 409 in outcomes.values(), outcomes  # both sides of the race ran

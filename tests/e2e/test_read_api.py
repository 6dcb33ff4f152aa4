"""Reading orders: the list with cursor pagination, the event log, the brief's path, readiness."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.engine import Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def get(engine: Engine, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{engine.base_url}{path}", params=params, timeout=10)


def test_orders_list_newest_first_with_cursor_pages_and_filters(engine: Engine) -> None:
    user = f"lister-{uuid.uuid4().hex[:6]}"
    ids = [engine.submit(userId=user, amount=str(i + 1)) for i in range(5)]
    for order_id in ids:
        engine.wait_for_status(order_id, {"confirmed", "failed"})
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):  # bounded: 5 orders, pages of 2
        params = {"userId": user, "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = get(engine, "/api/orders", **params).json()
        assert len(page["orders"]) <= 2
        seen += [o["orderId"] for o in page["orders"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each once
    confirmed = get(engine, "/api/orders", userId=user, status="confirmed", limit="50").json()["orders"]
    assert {o["orderId"] for o in confirmed} <= set(ids) and all(
        o["status"] == "confirmed" for o in confirmed
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": "0"}, "limit"), ({"status": "lost"}, "status"), ({"cursor": "zzz"}, "cursor")],
)
def test_bad_list_parameters_get_422_naming_them(engine: Engine, params: dict[str, str], field: str) -> None:
    response = get(engine, "/api/orders", **params)
    assert response.status_code == 422 and response.json()["error"]["field"] == field


def test_the_order_events_come_from_the_log_in_order(engine: Engine) -> None:
    order_id = engine.submit()
    engine.wait_for_status(order_id, {"confirmed"})
    log = get(engine, f"/api/orders/{order_id}/events").json()["events"]
    assert [e["version"] for e in log] == list(range(1, len(log) + 1))
    assert log[0]["type"] == "OrderPending" and log[-1]["type"] == "OrderConfirmed"
    assert all(e["metadata"]["correlation_id"] == order_id for e in log)
    assert get(engine, f"/api/orders/{uuid.uuid4()}/events").status_code == 404


def test_the_briefs_path_serves_the_same_order(engine: Engine) -> None:
    order_id = engine.submit()
    engine.wait_for_status(order_id, {"confirmed"})
    assert get(engine, f"/orders/{order_id}").json() == engine.order(order_id)


def test_readyz_reports_every_dependency_ready(engine: Engine) -> None:
    def ready() -> dict[str, object] | None:
        response = get(engine, "/readyz")
        return response.json() if response.status_code == 200 else None

    body = wait_until(ready, 20, what="/readyz to report ready")
    assert body["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "scheduler": "ok",
        "worker": "ok",
        "projections": "ok",
    }

"""The reads the dashboard added, against the real engine: an order's state at each version
(`GET /api/orders/{id}/state`) and the engine's health (`GET /api/engine/health`)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.engine import Engine

pytestmark = pytest.mark.e2e


def test_the_state_at_each_version_is_the_order_folded_up_to_that_event(engine: Engine) -> None:
    order_id = engine.submit(userId=f"state-{uuid.uuid4().hex[:8]}")
    final = engine.wait_for_status(order_id, {"confirmed"})
    events = httpx.get(f"{engine.base_url}/api/orders/{order_id}/events", timeout=10).json()["events"]
    seen = []
    for event in events:
        at = httpx.get(
            f"{engine.base_url}/api/orders/{order_id}/state?version={event['version']}", timeout=10
        )
        assert at.status_code == 200, at.text
        body = at.json()
        assert (body["version"], body["eventType"], body["latestVersion"]) == (
            event["version"], event["type"], events[-1]["version"],
        )  # fmt: skip
        assert body["order"]["version"] == event["version"]
        seen.append(body["order"]["status"])
    assert seen[0] == "pending" and seen[1] == "routing" and seen[-1] == "confirmed"
    assert body["order"] == {**final, "updatedAt": body["order"]["updatedAt"]}  # the last is the order
    whole = httpx.get(f"{engine.base_url}/api/orders/{order_id}/state", timeout=10).json()
    assert whole["version"] == events[-1]["version"]


@pytest.mark.parametrize("version", ["0", "99", "x", "-1", "1.5"])
def test_a_version_out_of_range_or_not_a_whole_number_is_422_naming_version(
    engine: Engine, version: str
) -> None:
    order_id = engine.submit(userId="state-bad")
    answer = httpx.get(
        f"{engine.base_url}/api/orders/{order_id}/state", params={"version": version}, timeout=10
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "version"


def test_the_state_of_an_unknown_order_is_404(engine: Engine) -> None:
    answer = httpx.get(f"{engine.base_url}/api/orders/{uuid.uuid4()}/state", timeout=10)
    assert answer.status_code == 404


def test_engine_health_reports_limits_queues_lag_and_live_heartbeats(engine: Engine) -> None:
    engine.wait_for_status(engine.submit(userId="health"), {"confirmed"})
    health = httpx.get(f"{engine.base_url}/api/engine/health", timeout=10).json()
    assert health["maxInFlight"] == 10 and health["startsPerMinute"] == 100  # the defaults
    assert 0 <= health["inFlight"] <= health["maxInFlight"]
    assert health["startsLastMinute"] >= 1  # the order just routed took a start
    assert set(health["queues"]) == {"orders", "orders_priority"}
    assert set(health["lag"]) == {"redis_relay", "orders", "stats"}
    assert health["workers"] and all(w["ageSeconds"] < 30 for w in health["workers"])
    assert health["scheduler"]["process"] == "scheduler" and health["scheduler"]["ageSeconds"] < 30


def test_the_dashboard_page_and_its_files_are_served_and_nothing_else_from_its_folder(engine: Engine) -> None:
    page = httpx.get(f"{engine.base_url}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/dashboard/app.js">' in page.text
    script = httpx.get(f"{engine.base_url}/dashboard/app.js", timeout=10)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for name in ("index.html", "..%2Fauth.py", "missing.js"):
        assert httpx.get(f"{engine.base_url}/dashboard/{name}", timeout=10).status_code == 404, name

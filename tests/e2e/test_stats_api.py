"""Order statistics through the real engine: the scheduler's stats follower keeps them, the API
serves them, and with API keys a user reads only their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.engine import Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
ALICE, BOB = f"alice-{RUN}", f"bob-{RUN}"
ALICE_KEY, BOB_KEY = f"alice-stats-key-{RUN}", f"bob-stats-key-{RUN}"


@pytest.fixture(scope="module")
def secured(start_engine) -> Engine:  # type: ignore[no-untyped-def]
    return start_engine(API_KEYS=f"{ALICE_KEY}:{ALICE},{BOB_KEY}:{BOB}")


@pytest.fixture
def alice(secured: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.base_url, headers={"Authorization": f"Bearer {ALICE_KEY}"}) as c:
        yield c


@pytest.fixture
def bob(secured: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.base_url, headers={"Authorization": f"Bearer {BOB_KEY}"}) as c:
        yield c


def test_a_users_statistics_follow_their_orders_and_only_they_may_read_them(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    placed = []
    for amount, pair in (("1.5", ("SOL", "USDC")), ("2.5", ("SOL", "USDC")), ("100", ("USDC", "SOL"))):
        order = {"orderType": "market", "tokenIn": pair[0], "tokenOut": pair[1], "amount": amount}
        response = alice.post("/api/orders/execute", json=order)
        assert response.status_code == 200, response.text
        placed.append(response.json()["orderId"])

    def confirmed() -> dict[str, object] | None:
        response = alice.get(f"/api/stats/users/{ALICE}")
        body = response.json() if response.status_code == 200 else None
        return body if body and body["byStatus"]["confirmed"] == 3 else None

    stats = wait_until(confirmed, 30, what="alice's three orders confirmed in her statistics")
    assert (stats["userId"], stats["orders"], stats["successRate"]) == (ALICE, 3, 1.0)
    assert isinstance(stats["avgExecutionSeconds"], float) and stats["avgExecutionSeconds"] > 0
    pairs = {(p["tokenIn"], p["tokenOut"]): p for p in stats["pairs"]}  # type: ignore[attr-defined]
    assert set(pairs) == {("SOL", "USDC"), ("USDC", "SOL")}
    assert (pairs["SOL", "USDC"]["orders"], pairs["SOL", "USDC"]["requestedVolumeIn"]) == (2, "4")
    assert (
        pairs["SOL", "USDC"]["executedVolumeIn"] == "4"
        and float(pairs["SOL", "USDC"]["executedVolumeOut"]) > 0
    )

    other = bob.get(f"/api/stats/users/{ALICE}")  # another user's: exactly like a user with no orders
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert bob.get(f"/api/stats/users/{BOB}").status_code == 404  # bob has no orders yet
    assert other.json()["error"]["message"] == f"no orders of user {ALICE}"


def test_pair_statistics_are_visible_to_any_caller(
    alice: httpx.Client, bob: httpx.Client, secured: Engine
) -> None:
    assert (
        alice.post(
            "/api/orders/execute",
            json={"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"},
        ).status_code
        == 200
    )
    listed = wait_until(lambda: bob.get("/api/stats/pairs").json()["pairs"], 30, what="pair statistics")
    assert ("SOL", "USDC") in {(p["tokenIn"], p["tokenOut"]) for p in listed}
    one = bob.get("/api/stats/pairs/SOL/USDC")
    assert one.status_code == 200 and one.json()["orders"] >= 1
    missing = bob.get("/api/stats/pairs/JUP/BONK")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "no orders of pair JUP/BONK"
    assert httpx.get(f"{secured.base_url}/api/stats/pairs", timeout=10).status_code == 401


def test_readyz_reports_each_followers_lag(secured: Engine) -> None:
    def ready() -> dict[str, object] | None:
        response = httpx.get(f"{secured.base_url}/readyz", timeout=10)
        return response.json() if response.status_code == 200 else None

    body = wait_until(ready, 20, what="/readyz to report ready")
    assert body["checks"]["projections"] == "ok"  # type: ignore[index]
    assert set(body["lag"]) == {"orders", "stats", "redis_relay"}  # type: ignore[arg-type]
    assert all(set(lag) == {"events", "seconds"} for lag in body["lag"].values())  # type: ignore[attr-defined]

"""API keys (who may see and do what), the per-user submission rate limit, and body size."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import httpx
import pytest
import websockets

from tests.e2e.engine import Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

ALICE_KEY = "alice-key-0123456789abcdef"
BOB_KEY = "bob-key-0123456789abcdef"
ORDER = {"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}


@pytest.fixture(scope="module")
def secured(start_engine) -> Engine:  # type: ignore[no-untyped-def]
    return start_engine(
        API_KEYS=f"{ALICE_KEY}:alice,{BOB_KEY}:bob", ORDER_RATE_PER_MIN="60", ORDER_RATE_BURST="5"
    )


@pytest.fixture
def alice(secured: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.base_url, headers={"Authorization": f"Bearer {ALICE_KEY}"}) as c:
        yield c


@pytest.fixture
def bob(secured: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.base_url, headers={"Authorization": f"Bearer {BOB_KEY}"}) as c:
        yield c


def test_without_a_key_only_the_probes_answer(secured: Engine) -> None:
    for method, path in [
        ("POST", "/api/orders/execute"),
        ("GET", "/api/orders"),
        ("GET", "/api/market/prices"),
    ]:
        response = httpx.request(method, secured.base_url + path, json=ORDER, timeout=10)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.get(secured.base_url + "/api/orders", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    assert httpx.get(secured.base_url + "/healthz", timeout=10).status_code == 200


def test_the_keys_user_owns_the_order_and_others_get_404(alice: httpx.Client, bob: httpx.Client) -> None:
    placed = alice.post("/api/orders/execute", json={**ORDER, "userId": "mallory"})
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    assert alice.get(f"/api/orders/{order_id}").json()["userId"] == "alice"  # the key wins over the body
    for method, path in [
        ("GET", f"/api/orders/{order_id}"),
        ("GET", f"/orders/{order_id}"),
        ("GET", f"/api/orders/{order_id}/events"),
        ("DELETE", f"/api/orders/{order_id}"),
    ]:
        response = bob.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert "alice" not in response.text
    # Listings read the orders projection, which follows the log: once alice's shows the
    # order, bob's must not.
    wait_until(lambda: order_id in alice.get("/api/orders").text, timeout=10, what="the order listed")
    assert order_id not in bob.get("/api/orders").text
    forbidden = bob.get("/api/orders", params={"userId": "alice"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["field"] == "userId"


def test_a_websocket_needs_the_key_and_sees_only_its_own_orders(secured: Engine, alice: httpx.Client) -> None:
    order_id = alice.post("/api/orders/execute", json=ORDER).json()["orderId"]
    url = secured.base_url.replace("http://", "ws://") + f"/ws?orderId={order_id}"

    async def close_of(headers: dict[str, str]) -> tuple[int | None, str | None, list[dict[str, object]]]:
        messages: list[dict[str, object]] = []
        with anyio.fail_after(30):
            async with websockets.connect(url, additional_headers=headers) as ws:
                try:
                    async for raw in ws:
                        messages.append(json.loads(raw))
                except websockets.ConnectionClosed:
                    pass
                return ws.close_code, ws.close_reason, messages

    code, reason, _ = anyio.run(close_of, {})
    assert code == 1008 and "API key" in (reason or "")
    code, _, messages = anyio.run(close_of, {"Authorization": f"Bearer {BOB_KEY}"})
    assert code == 1008 and messages == []
    code, _, messages = anyio.run(close_of, {"Authorization": f"Bearer {ALICE_KEY}"})
    assert code == 1000 and messages[-1]["status"] in {"confirmed", "failed"}


def test_submitting_too_fast_gets_429_with_retry_after_and_stores_nothing(bob: httpx.Client) -> None:
    answers = [bob.post("/api/orders/execute", json={**ORDER, "amount": "0.01"}) for _ in range(10)]
    codes = [a.status_code for a in answers]
    assert codes[:6] == [200] * 6  # a burst of 5 plus the one the rate allows now
    refused = [a for a in answers if a.status_code == 429]
    assert refused, codes
    assert refused[0].json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused[0].headers["retry-after"]) <= 2
    accepted = {a.json()["orderId"] for a in answers if a.status_code == 200}

    def listed() -> list[dict[str, str]] | None:  # the read model catches up with the log
        orders = bob.get("/api/orders", params={"limit": "200"}).json()["orders"]
        return orders if accepted <= {o["orderId"] for o in orders} else None

    stored = wait_until(listed, 10, what="the accepted orders in the listing")
    assert len([o for o in stored if o["amount"] == "0.01"]) == len(accepted)  # 429s stored nothing


def test_a_body_over_64_kib_is_refused_with_413(alice: httpx.Client) -> None:
    response = alice.post(
        "/api/orders/execute",
        content=b'{"pad":"' + b"x" * 70_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"]


def test_keys_never_reach_the_log(secured: Engine, alice: httpx.Client) -> None:
    alice.post("/api/orders/execute", json={**ORDER, "amount": "not a number"})  # an error path too
    text = secured.log_path.read_text(errors="replace")
    assert ALICE_KEY not in text and BOB_KEY not in text
    assert "order accepted" in text  # the log was written, so its silence about keys means something

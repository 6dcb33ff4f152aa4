"""Operator keys through the real engine: an operator reads, cancels and follows every
user's order (`/ws?all=true`, resumable by position); a user's key still sees only its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import websockets

from tests.e2e.engine import Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
ALICE, BOB = f"op-alice-{RUN}", f"op-bob-{RUN}"
ALICE_KEY, BOB_KEY, OPERATOR_KEY = (f"{name}-key-{RUN}-0123456789" for name in ("alice", "bob", "operator"))
MARKET = {"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
TERMINAL = {"confirmed", "failed", "cancelled", "expired"}


@pytest.fixture(scope="module")
def engine(start_engine: Callable[..., Engine]) -> Engine:
    return start_engine(API_KEYS=f"{ALICE_KEY}:{ALICE},{BOB_KEY}:{BOB}", OPERATOR_KEYS=OPERATOR_KEY)


def client(engine: Engine, key: str) -> httpx.Client:
    return httpx.Client(base_url=engine.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


@pytest.fixture
def alice(engine: Engine) -> Iterator[httpx.Client]:
    with client(engine, ALICE_KEY) as c:
        yield c


@pytest.fixture
def bob(engine: Engine) -> Iterator[httpx.Client]:
    with client(engine, BOB_KEY) as c:
        yield c


@pytest.fixture
def operator(engine: Engine) -> Iterator[httpx.Client]:
    with client(engine, OPERATOR_KEY) as c:
        yield c


def place(c: httpx.Client, **overrides: str) -> str:
    answer = c.post("/api/orders/execute", json={**MARKET, **overrides})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["orderId"])


def final(c: httpx.Client, order_id: str) -> str:
    def done() -> str | None:
        status = str(c.get(f"/api/orders/{order_id}").json()["status"])
        return status if status in TERMINAL else None

    return wait_until(done, 30, what=f"order {order_id} to finish")


def test_me_names_the_keys_role(alice: httpx.Client, operator: httpx.Client) -> None:
    assert alice.get("/api/me").json() == {"role": "user", "userId": ALICE}
    assert operator.get("/api/me").json() == {"role": "operator", "userId": None}


def test_an_operator_lists_every_users_orders_and_may_filter_by_user(
    alice: httpx.Client, bob: httpx.Client, operator: httpx.Client
) -> None:
    mine, theirs = place(alice), place(bob)

    def listed() -> dict[str, str] | None:  # the list reads the projection, a moment behind the log
        page = {o["orderId"]: o["userId"] for o in operator.get("/api/orders?limit=200").json()["orders"]}
        return page if {mine, theirs} <= page.keys() else None

    both = wait_until(listed, 10, what="both users' orders in the operator's list")
    assert both[mine] == ALICE and both[theirs] == BOB
    only_bob = operator.get(f"/api/orders?userId={BOB}&limit=200").json()["orders"]
    assert theirs in {o["orderId"] for o in only_bob} and {o["userId"] for o in only_bob} == {BOB}
    assert alice.get(f"/api/orders?userId={BOB}").status_code == 403  # a user's key still may not


def test_an_operator_reads_any_order_its_events_and_its_state_and_a_user_gets_404(
    alice: httpx.Client, bob: httpx.Client, operator: httpx.Client
) -> None:
    order_id = place(alice)
    final(alice, order_id)
    for path in (
        f"/api/orders/{order_id}",
        f"/api/orders/{order_id}/events",
        f"/api/orders/{order_id}/state",
    ):
        assert operator.get(path).status_code == 200, path
        assert bob.get(path).status_code == 404, path
    state = operator.get(f"/api/orders/{order_id}/state?version=1").json()
    assert state["order"]["status"] == "pending" and state["order"]["userId"] == ALICE


def test_an_operator_cancels_another_users_order_and_the_log_says_by_whom(
    alice: httpx.Client, bob: httpx.Client, operator: httpx.Client
) -> None:
    waiting = place(alice, orderType="limit", limitPrice="1000000")
    assert bob.delete(f"/api/orders/{waiting}").status_code == 404
    answer = operator.delete(f"/api/orders/{waiting}")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    events = operator.get(f"/api/orders/{waiting}/events").json()["events"]
    assert events[-1]["type"] == "OrderCancelled" and events[-1]["data"]["by"] == "operator"


async def _read(url: str, key: str, until: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Messages of the stream until `until(messages)` holds; then the client leaves."""
    messages: list[dict[str, Any]] = []
    with anyio.fail_after(30):
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            async for raw in ws:
                messages.append(json.loads(raw))
                if until(messages):
                    break
    return messages


def _finished(order_ids: set[str]) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda ms: order_ids <= {m["orderId"] for m in ms if m["status"] in TERMINAL}


def test_a_user_key_is_refused_the_all_orders_stream_with_the_reason(engine: Engine) -> None:
    async def close_of() -> tuple[int | None, str | None]:
        url = engine.base_url.replace("http://", "ws://") + "/ws?all=true"
        with anyio.fail_after(30):
            async with websockets.connect(
                url, additional_headers={"Authorization": f"Bearer {BOB_KEY}"}
            ) as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.recv()
                return ws.close_code, ws.close_reason

    code, reason = anyio.run(close_of)
    assert code == 1008 and "only an operator key streams every order" in (reason or "")


def test_the_all_orders_stream_carries_every_users_events_once_across_a_resume(
    engine: Engine, alice: httpx.Client, bob: httpx.Client, operator: httpx.Client
) -> None:
    marker = place(alice)
    start = operator.get(f"/api/orders/{marker}/events").json()["events"][0]["position"]
    url = engine.base_url.replace("http://", "ws://") + "/ws?all=true&fromPosition="
    first = place(alice)
    before = anyio.run(_read, f"{url}{start}", OPERATOR_KEY, _finished({first}))
    # Placed and finished while nobody follows: the resumed stream reads it from the log.
    missed = place(bob)
    final(bob, missed)
    resumed_at = before[-1]["position"]

    live: list[str] = []

    async def resume_then_place() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        past_history = anyio.Event()

        def done(messages: list[dict[str, Any]]) -> bool:
            if _finished({missed})(messages):
                past_history.set()  # the order missed while away came from the log
            return bool(live) and _finished({missed, live[0]})(messages)

        async def follow() -> None:
            result.extend(await _read(f"{url}{resumed_at}", OPERATOR_KEY, done))

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await past_history.wait()  # connected and past its history: the next order arrives live
            live.append(await anyio.to_thread.run_sync(place, alice))
        return result

    after = anyio.run(resume_then_place)
    streamed = before + after
    positions = [m["position"] for m in streamed]
    assert positions == sorted(set(positions)), "a position repeated or out of order"
    assert after[0]["position"] > resumed_at
    for order_id in (first, missed, live[0]):
        logged = [
            (e["position"], e["version"])
            for e in operator.get(f"/api/orders/{order_id}/events").json()["events"]
            if e["type"] != "SwapRequested"
        ]
        assert [(m["position"], m["version"]) for m in streamed if m["orderId"] == order_id] == logged, (
            order_id
        )
    pending = {m["orderId"]: m["details"].get("userId") for m in streamed if m["type"] == "OrderPending"}
    assert pending[first] == ALICE and pending[missed] == BOB  # every user's orders, one stream

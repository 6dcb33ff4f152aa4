"""One order through the real processes: API, Dramatiq worker, scheduler."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal

import anyio
import httpx
import pytest

from tests.e2e.engine import Engine
from tests.e2e.ws_client import collect
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]


def test_order_goes_pending_to_confirmed_through_the_worker(engine: Engine) -> None:
    order_id = engine.submit()
    order = engine.wait_for_status(order_id, {"confirmed", "failed"})
    assert order["status"] == "confirmed", order
    assert order["txHash"] and order["executedPrice"] and order["chosenDex"] in {"raydium", "meteora"}
    assert order["attempts"] == 1 and order["lastError"] is None
    assert order["explorerUrl"] == f"https://explorer.solana.com/tx/{order['txHash']}?cluster=devnet"
    assert order["cancelReason"] is None and order["cancelledBy"] is None
    assert {q["dex"] for q in order["quotes"]} == {"raydium", "meteora"}


def test_websocket_client_sees_every_status_in_order(engine: Engine) -> None:
    async def scenario() -> tuple[list[dict[str, object]], int | None]:
        async with httpx.AsyncClient(base_url=engine.base_url) as client:
            response = await client.post(
                "/api/orders/execute",
                json={
                    "userId": "ws",
                    "orderType": "market",
                    "tokenIn": "SOL",
                    "tokenOut": "USDC",
                    "amount": 2,
                },
            )
        return await collect(engine.base_url, response.json()["orderId"])

    messages, close_code = anyio.run(scenario)
    assert [m["status"] for m in messages] == LIFECYCLE
    # Version 4 is SwapRequested, the engine's own bookkeeping: not sent to clients.
    assert [m["version"] for m in messages] == [1, 2, 3, 5, 6]
    routing, building, submitted, confirmed = messages[1], messages[2], messages[3], messages[4]
    assert {q["dex"] for q in routing["details"]["quotes"]} == {"raydium", "meteora"}
    assert all({"price", "fee", "liquidity"} <= q.keys() for q in routing["details"]["quotes"])
    assert routing["details"]["chosenDex"] in {"raydium", "meteora"}
    assert building["details"]["actions"][0] == "wrap_sol"
    assert submitted["details"]["txHash"] == confirmed["details"]["txHash"]
    assert confirmed["details"]["executedPrice"]
    assert all(m["orderId"] == messages[0]["orderId"] and m["timestamp"] for m in messages)
    assert close_code == 1000


def test_late_subscriber_gets_the_full_history(engine: Engine) -> None:
    order_id = engine.submit(tokenIn="USDC", tokenOut="SOL", amount="300")
    engine.wait_for_status(order_id, {"confirmed"})
    messages, close_code = anyio.run(collect, engine.base_url, order_id)
    assert [m["status"] for m in messages] == LIFECYCLE
    assert messages[2]["details"]["actions"] == ["swap:" + messages[1]["details"]["chosenDex"], "unwrap_sol"]
    assert close_code == 1000


def test_resuming_subscriber_gets_only_what_it_missed(engine: Engine) -> None:
    order_id = engine.submit()
    engine.wait_for_status(order_id, {"confirmed"})
    messages, _ = anyio.run(collect, engine.base_url, order_id, 3)
    assert [m["version"] for m in messages] == [5, 6]
    messages, _ = anyio.run(collect, engine.base_url, order_id, 5)
    assert [m["status"] for m in messages] == ["confirmed"]


def test_websocket_rejects_bad_or_unknown_order_ids_with_1008(engine: Engine) -> None:
    _, code = anyio.run(collect, engine.base_url, "not-a-uuid")
    assert code == 1008
    _, code = anyio.run(collect, engine.base_url, "00000000-0000-4000-8000-000000000000")
    assert code == 1008


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": 1}, "userId"),
        ({"userId": "u", "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": 0}, "amount"),
        (
            {"userId": "u", "orderType": "market", "tokenIn": "SOL", "tokenOut": "DOGE", "amount": 1},
            "tokenOut",
        ),
        (
            {"userId": "u", "orderType": "stop", "tokenIn": "SOL", "tokenOut": "USDC", "amount": 1},
            "orderType",
        ),
        (
            {"userId": "u", "orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": 1},
            "limitPrice",
        ),
    ],
)
def test_bad_input_gets_422_naming_the_field_and_stores_nothing(
    engine: Engine, database_url: str, body: dict[str, object], field: str
) -> None:
    before = _event_count(database_url)
    response = httpx.post(f"{engine.base_url}/api/orders/execute", json=body, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert _event_count(database_url) == before


def test_malformed_json_gets_400(engine: Engine) -> None:
    response = httpx.post(
        f"{engine.base_url}/api/orders/execute",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_an_oversized_body_gets_413_and_stores_nothing(engine: Engine, database_url: str) -> None:
    before = _event_count(database_url)
    body = b'{"userId": "' + b"x" * 200_000 + b'"}'
    response = httpx.post(
        f"{engine.base_url}/api/orders/execute", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "error" in response.json()
    assert _event_count(database_url) == before


def test_unknown_order_is_404(engine: Engine) -> None:
    for order_id in ("00000000-0000-4000-8000-000000000000", "nope"):
        response = httpx.get(f"{engine.base_url}/api/orders/{order_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_unmarketable_limit_order_waits_then_expires(engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    expires = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    order_id = engine.submit(orderType="limit", limitPrice="100000", expiresAt=expires)
    waiting = engine.wait_for_status(order_id, {"waiting"})
    assert Decimal(waiting["bestPrice"]) < 100000
    order = engine.wait_for_status(order_id, {"expired", "confirmed", "failed"})
    assert order["status"] == "expired"
    messages, close_code = anyio.run(collect, engine.base_url, order_id)
    statuses = [m["status"] for m in messages]  # a new best price is streamed as another "waiting"
    assert statuses == ["pending"] + ["waiting"] * (len(statuses) - 2) + ["expired"] and len(statuses) >= 3
    assert messages[1]["details"]["limitPrice"] == "100000"
    assert close_code == 1000


def test_limit_order_executes_once_a_requote_reaches_its_price(engine: Engine) -> None:
    # About 30% of quotes reach this price (the mock quotes within ±2% of 150, each
    # independently), and the build re-checks it on a fresh quote: the order typically
    # waits, routes, may fall back to waiting, and fills within a few re-quotes.
    limit = Decimal("151.5")
    order_id = engine.submit(orderType="limit", limitPrice=str(limit))
    order = engine.wait_for_status(order_id, {"confirmed", "failed", "expired"}, timeout=60)
    assert order["status"] == "confirmed", order
    messages, _ = anyio.run(collect, engine.base_url, order_id)
    statuses = [m["status"] for m in messages]
    assert statuses[0] == "pending" and statuses[-4:] == ["routing", "building", "submitted", "confirmed"]
    assert set(statuses[1:-4]) <= {"waiting", "routing"}
    for before, after in itertools.pairwise(statuses):
        if before == "routing":
            assert after in {"building", "waiting"}
    assert all(Decimal(m["details"]["bestPrice"]) < limit for m in messages if m["status"] == "waiting")
    building = messages[-3]["details"]
    assert building["quote"] is not None  # built on the fresh quote of the re-check
    assert Decimal(building["quote"]["expectedOut"]) / Decimal("1.5") >= limit


def test_marketable_limit_order_executes(engine: Engine) -> None:
    order_id = engine.submit(orderType="limit", limitPrice="100")
    assert engine.wait_for_status(order_id, {"confirmed", "failed"})["status"] == "confirmed"


def _event_count(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def test_engine_stops_cleanly_on_sigterm(start_engine: Callable[..., Engine]) -> None:
    extra = start_engine()
    assert extra.stop() == 0


def test_late_subscriber_gets_history_from_the_log_when_redis_dropped_the_stream(
    engine: Engine, redis_url: str
) -> None:
    import redis

    order_id = engine.submit()
    engine.wait_for_status(order_id, {"confirmed"})
    key = f"{engine.prefix}:order:{order_id}"
    client = redis.Redis.from_url(redis_url)
    try:  # once published, drop it: as if trimmed, expired, or lost in a Redis restart
        wait_until(lambda: client.xlen(key) == 6, 10, what="the relay to publish all six events")
        assert client.delete(key) == 1
    finally:
        client.close()
    messages, close_code = anyio.run(collect, engine.base_url, order_id)
    assert [m["status"] for m in messages] == LIFECYCLE
    assert close_code == 1000


def test_the_order_stream_path_serves_the_same_messages(engine: Engine) -> None:
    import json

    import websockets

    order_id = engine.submit()
    engine.wait_for_status(order_id, {"confirmed"})

    async def read() -> list[dict[str, object]]:
        url = engine.base_url.replace("http://", "ws://") + f"/api/orders/{order_id}/stream"
        async with websockets.connect(url) as ws:
            return [json.loads(raw) async for raw in ws]

    via_path = anyio.run(read)
    via_query, _ = anyio.run(collect, engine.base_url, order_id)
    assert via_path == via_query and [m["status"] for m in via_path] == LIFECYCLE

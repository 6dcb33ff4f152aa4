"""Idempotent submission: the same key from the same user names one order, however often sent."""

from __future__ import annotations

import uuid

import anyio
import httpx
import psycopg
import pytest

from tests.e2e.engine import Engine

pytestmark = pytest.mark.e2e

BODY = {"userId": "idem", "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}


def post(engine: Engine, body: dict[str, object], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(f"{engine.base_url}/api/orders/execute", json=body, headers=headers, timeout=10)


def pending_events(database_url: str, order_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE stream_id = %s AND type = 'OrderPending'", (order_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_concurrent_retries_with_one_key_create_one_order(engine: Engine, database_url: str) -> None:
    key = f"k-{uuid.uuid4()}"

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=engine.base_url, timeout=10) as client:
            responses: list[httpx.Response] = []

            async def one() -> None:
                responses.append(
                    await client.post("/api/orders/execute", json=BODY, headers={"Idempotency-Key": key})
                )

            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(one)
            return responses

    responses = anyio.run(burst)
    assert {r.status_code for r in responses} == {200}
    order_ids = {r.json()["orderId"] for r in responses}
    assert len(order_ids) == 1
    (order_id,) = order_ids
    assert pending_events(database_url, order_id) == 1
    assert engine.wait_for_status(order_id, {"confirmed", "failed"})["status"] == "confirmed"
    again = post(engine, BODY, key)  # a late retry answers with where the order stands
    assert again.json()["orderId"] == order_id and again.json()["status"] == "confirmed"


def test_client_order_id_works_like_the_header_and_is_per_user(engine: Engine) -> None:
    cid = f"c-{uuid.uuid4()}"
    first = post(engine, {**BODY, "clientOrderId": cid}).json()["orderId"]
    assert post(engine, {**BODY, "clientOrderId": cid}).json()["orderId"] == first
    other_user = post(engine, {**BODY, "userId": "someone-else", "clientOrderId": cid}).json()["orderId"]
    assert other_user != first


def test_a_key_reused_for_a_different_order_is_409(engine: Engine) -> None:
    key = f"k-{uuid.uuid4()}"
    assert post(engine, BODY, key).status_code == 200
    response = post(engine, {**BODY, "amount": "2"}, key)
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


def test_zero_slippage_is_kept_not_replaced_by_the_default(engine: Engine) -> None:
    order_id = post(engine, {**BODY, "slippageTolerance": "0"}).json()["orderId"]
    order = engine.wait_for_status(order_id, {"confirmed", "failed"})
    assert order["slippageTolerance"] == "0"

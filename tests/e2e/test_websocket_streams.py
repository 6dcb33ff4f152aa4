"""WebSocket behaviours beyond one order's stream: a user's stream, submitting on the
socket, per-user connection limits, protocol pings, and streams left open after the end."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
import websockets

from tests.e2e.engine import Engine

pytestmark = pytest.mark.e2e

ORDER = {"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
FINAL = {"confirmed", "failed", "cancelled", "expired"}


def ws_url(engine: Engine, path: str) -> str:
    return engine.base_url.replace("http://", "ws://") + path


async def read_until(ws: Any, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30) -> list[Any]:
    messages: list[dict[str, Any]] = []
    with anyio.fail_after(timeout):
        while not done(messages):
            messages.append(json.loads(await ws.recv()))
    return messages


def finished_orders(messages: list[dict[str, Any]]) -> set[str]:
    return {m["orderId"] for m in messages if m.get("status") in FINAL}


def test_a_user_stream_carries_every_order_of_that_user_once_and_in_order(engine: Engine) -> None:
    user = f"dash-{uuid.uuid4().hex[:6]}"

    async def scenario() -> tuple[list[dict[str, Any]], list[str]]:
        async with websockets.connect(ws_url(engine, f"/ws?userId={user}")) as ws:
            async with httpx.AsyncClient(base_url=engine.base_url) as http:
                ids = [
                    (await http.post("/api/orders/execute", json={**ORDER, "userId": u})).json()["orderId"]
                    for u in (user, "someone-else", user, user)
                ]
            mine = [ids[0], ids[2], ids[3]]
            return await read_until(ws, lambda ms: finished_orders(ms) >= set(mine)), mine

    messages, mine = anyio.run(scenario)
    assert {m["orderId"] for m in messages} == set(mine)  # never another user's order
    positions = [m["position"] for m in messages]
    assert positions == sorted(set(positions))  # log order, each event once
    for order_id in mine:
        versions = [m["version"] for m in messages if m["orderId"] == order_id]
        assert versions == sorted(set(versions)) and messages[0]["status"] == "pending"

    # A dashboard that reconnects from the last position it saw gets exactly what followed it.
    cut = messages[len(messages) // 2]["position"]

    async def resume() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(engine, f"/ws?userId={user}&fromPosition={cut}")) as ws:
            later = [m for m in messages if m["position"] > cut]
            return await read_until(ws, lambda ms: len(ms) >= len(later))

    resumed = anyio.run(resume)
    assert [m["position"] for m in resumed] == [m["position"] for m in messages if m["position"] > cut]


def test_an_order_submitted_on_the_socket_streams_on_the_same_connection(engine: Engine) -> None:
    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]], int | None]:
        async with websockets.connect(ws_url(engine, "/api/orders/execute")) as ws:
            await ws.send(json.dumps({**ORDER, "userId": "socket-trader"}))
            accepted = json.loads(await ws.recv())
            messages: list[dict[str, Any]] = []
            with anyio.fail_after(30):
                try:
                    async for raw in ws:
                        messages.append(json.loads(raw))
                except websockets.ConnectionClosed:
                    pass
            return accepted, messages, ws.close_code

    accepted, messages, code = anyio.run(scenario)
    assert set(accepted) >= {"orderId", "status", "streamUrl"} and accepted["status"] == "pending"
    assert {m["orderId"] for m in messages} == {accepted["orderId"]}
    statuses = [m["status"] for m in messages]
    assert statuses[0] == "pending" and statuses[-1] == "confirmed", statuses
    assert [m["version"] for m in messages] == sorted(set(m["version"] for m in messages))
    assert code == 1000
    # The read model is a projection of the log: it follows the stream within moments.
    assert engine.wait_for_status(accepted["orderId"], {"confirmed"}, timeout=5)["status"] == "confirmed"


def test_a_bad_order_on_the_socket_gets_the_field_and_1008(engine: Engine) -> None:
    async def scenario(first: str) -> tuple[dict[str, Any], int | None, str | None]:
        async with websockets.connect(ws_url(engine, "/api/orders/execute")) as ws:
            await ws.send(first)
            reply = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return reply, ws.close_code, ws.close_reason

    reply, code, reason = anyio.run(scenario, json.dumps({**ORDER, "userId": "u", "amount": "-3"}))
    assert reply["error"]["field"] == "amount" and code == 1008 and "amount" in (reason or "")
    reply, code, _ = anyio.run(scenario, "not json")
    assert reply["error"]["code"] == "malformed_json" and code == 1008


@pytest.mark.parametrize(
    "query",
    ["", "?orderId=nope", "?orderId=6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b&fromVersion=-1", "?userId="],
)
def test_bad_stream_parameters_close_with_1008_and_a_reason(engine: Engine, query: str) -> None:
    async def scenario() -> tuple[int | None, str | None]:
        async with websockets.connect(ws_url(engine, "/ws" + query)) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    code, reason = anyio.run(scenario)
    assert code == 1008 and reason


@pytest.fixture(scope="module")
def tuned(start_engine: Callable[..., Engine]) -> Engine:
    return start_engine(
        WS_MAX_CONNECTIONS_PER_USER="2",
        WS_PING_INTERVAL_S="0.3",
        WS_PING_TIMEOUT_S="0.6",
        WS_CLOSE_ON_TERMINAL="false",
    )


def test_connections_beyond_the_per_user_limit_are_refused_and_freed_on_leave(tuned: Engine) -> None:
    order_id = tuned.submit()
    url = ws_url(tuned, f"/ws?orderId={order_id}")

    async def scenario() -> tuple[int | None, int | None]:
        async with websockets.connect(url), websockets.connect(url):
            async with websockets.connect(url) as third:
                with pytest.raises(websockets.ConnectionClosed):
                    await third.recv()
                refused = third.close_code
        # Both left: a new connection is served again (the count was released at once).
        async with websockets.connect(url) as again:
            await again.recv()
            return refused, again.close_code

    refused, served = anyio.run(scenario)
    assert refused == 1008 and served is None


def test_streams_stay_open_after_the_end_when_configured(tuned: Engine) -> None:
    order_id = tuned.submit()
    tuned.wait_for_status(order_id, {"confirmed"})

    async def scenario() -> tuple[list[str], int | None]:
        async with websockets.connect(ws_url(tuned, f"/ws?orderId={order_id}")) as ws:
            statuses = [m["status"] for m in await read_until(ws, lambda ms: bool(finished_orders(ms)))]
            with anyio.move_on_after(1.0):  # several ping intervals: answered pongs keep it open
                await ws.recv()
            return statuses, ws.close_code

    statuses, code = anyio.run(scenario)
    assert statuses[-1] == "confirmed" and code is None


def test_the_server_pings_and_drops_a_client_that_never_answers(tuned: Engine) -> None:
    # A raw socket, so no library answers the pings for us.
    order_id = tuned.submit()
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", tuned.port), timeout=10) as raw:
        raw.sendall(
            f"GET /ws?orderId={order_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        reader = raw.makefile("rb")
        assert b"101" in reader.readline()
        while reader.readline() not in (b"\r\n", b""):
            pass
        opcodes: list[int] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and 0x8 not in opcodes:  # bounded: until a close frame
            head = reader.read(2)
            if len(head) < 2:
                break
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", reader.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", reader.read(8))[0]
            payload = reader.read(length)
            opcodes.append(head[0] & 0x0F)
            if head[0] & 0x0F == 0x8:
                close_code = struct.unpack("!H", payload[:2])[0]
    assert 0x9 in opcodes  # the server pinged
    assert opcodes[-1] == 0x8 and close_code == 1011  # and gave up on a client with no pong


def test_resuming_after_the_final_event_closes_at_once(engine: Engine) -> None:
    order_id = engine.submit()
    engine.wait_for_status(order_id, {"confirmed"})
    last = httpx.get(f"{engine.base_url}/api/orders/{order_id}/events").json()["events"][-1]["version"]

    async def scenario() -> tuple[list[str], int | None]:
        async with websockets.connect(ws_url(engine, f"/ws?orderId={order_id}&fromVersion={last}")) as ws:
            with anyio.fail_after(10):
                received = [raw async for raw in ws]
            return received, ws.close_code

    received, code = anyio.run(scenario)
    assert received == [] and code == 1000


def test_a_reused_idempotency_key_on_the_socket_reports_the_orders_status(engine: Engine) -> None:
    key = f"ws-key-{uuid.uuid4().hex[:8]}"

    async def scenario(amount: str) -> dict[str, Any]:
        url = ws_url(engine, "/api/orders/execute")
        async with websockets.connect(url, additional_headers={"Idempotency-Key": key}) as ws:
            await ws.send(json.dumps({**ORDER, "userId": "key-reuser", "amount": amount}))
            return dict(json.loads(await ws.recv()))

    first = anyio.run(scenario, "1")
    assert first["status"] == "pending"
    reused = anyio.run(scenario, "2")  # same key, a different order
    assert reused["error"]["code"] == "conflict" and reused["error"]["status"]


def open_websockets(engine: Engine) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{engine.base_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "orderengine_websocket_connections":
            return sum(sample.value for sample in family.samples)
    raise AssertionError("no websocket gauge in /metrics")


def test_a_client_that_leaves_is_cleaned_up_at_once(engine: Engine) -> None:
    from tests.waiting import wait_until

    async def scenario() -> float:
        async with (
            websockets.connect(ws_url(engine, "/ws?userId=leaver")),
            websockets.connect(ws_url(engine, "/ws?userId=leaver")),
        ):
            return await anyio.to_thread.run_sync(
                lambda: wait_until(
                    lambda: open_websockets(engine) == 2 or None, 10, what="two open sockets counted"
                )
            )

    assert anyio.run(scenario)
    # Both clients gone: the server notices without waiting for a ping or an event.
    wait_until(lambda: open_websockets(engine) == 0 or None, 5, what="the sockets to be released")

"""A WebSocket handshake uvicorn's websockets-sansio protocol refuses gets its answer
(api/ws_protocol.py): a real uvicorn server on 127.0.0.1, raw sockets as clients (issue 13).

Before: a 10,000-character `/ws?userId=…` got no answer at all; websockets had queued a 414
that uvicorn never wrote out, and the connection stayed open until the client gave up.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
import websockets.sync.client

from api.ws_protocol import WebSocketsProtocol

pytestmark = pytest.mark.integration


async def closing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts a WebSocket and closes it 1008, as the engine does for a userId too long."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1008, "reason": "userId must be 1 to 128 characters"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    config = uvicorn.Config(
        closing_app, host="127.0.0.1", port=free, ws=WebSocketsProtocol, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(10)


def handshake(port: int, path: str, extra_headers: str = "") -> bytes:
    """Sends an upgrade request; returns everything the server sends until it closes (at most 5 s)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    )
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(request.encode())
        try:
            while chunk := client.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"no answer and no close within 5 s; received {received[:200]!r}")
    return received


def test_a_10000_character_url_is_answered_414_and_closed(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="orderengine.ws"):
        answer = handshake(port, "/ws?userId=" + "u" * 10_000)
    assert answer.startswith(b"HTTP/1.1 414 ")
    assert b"expected no more than 8192 bytes" in answer  # websockets says why, in the body
    refused = [r for r in caplog.records if r.getMessage() == "websocket handshake refused"]
    assert refused and getattr(refused[0], "status", "").startswith("414")
    assert len(getattr(refused[0], "request", "")) < 200  # the log line does not carry 10 kB


def test_a_header_line_too_long_is_answered_431(port: int) -> None:
    answer = handshake(port, "/ws?userId=alice", extra_headers=f"X-Padding: {'p' * 9000}\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_handshake_within_the_limits_still_reaches_the_app(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/ws?userId=" + "u" * 7_000
    with websockets.sync.client.connect(url, open_timeout=5) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            ws.recv(timeout=5)
    assert ws.close_code == 1008

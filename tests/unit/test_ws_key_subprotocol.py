"""A browser's WebSocket carries the API key in a subprotocol (api/auth.py): the key is read
from it, the connection is accepted with `orderengine`, and a wrong key is refused as before."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from api.auth import WS_SUBPROTOCOL, AuthMiddleware, KeyRing, _bearer_from_subprotocols, caller_of

KEY = "browser-key-0123456789abcdef"


def encoded(key: str) -> str:
    return "bearer." + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


@websocket("/who")
async def who(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_text(str(caller_of(socket)))
    await socket.close()


def client(keys: dict[str, str]) -> TestClient[Litestar]:
    return TestClient(Litestar([who], middleware=[AuthMiddleware(KeyRing(keys))]))


def test_the_key_in_a_subprotocol_names_the_user_and_the_server_accepts_with_orderengine() -> None:
    with (
        client({KEY: "alice"}) as c,
        c.websocket_connect("/who", subprotocols=[WS_SUBPROTOCOL, encoded(KEY)]) as ws,
    ):
        assert ws.receive_text() == "alice"
        assert ws.accepted_subprotocol == WS_SUBPROTOCOL  # never the one carrying the key


def test_an_unknown_key_in_a_subprotocol_is_refused_with_1008() -> None:
    with (
        client({KEY: "alice"}) as c,
        c.websocket_connect("/who", subprotocols=[WS_SUBPROTOCOL, encoded("not-the-key-0123456789")]) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == 1008


def test_an_open_api_accepts_the_subprotocol_too() -> None:
    with client({}) as c, c.websocket_connect("/who", subprotocols=[WS_SUBPROTOCOL]) as ws:
        assert ws.receive_text() == "None"
        assert ws.accepted_subprotocol == WS_SUBPROTOCOL


@pytest.mark.parametrize("offered", [[], ["orderengine"], ["bearer.!!!"], ["bearer._w"]])
def test_no_key_is_read_from_subprotocols_without_a_well_formed_one(offered: list[str]) -> None:
    assert _bearer_from_subprotocols(offered) is None


def test_a_key_of_any_length_round_trips_through_base64url_without_padding() -> None:
    for key in (KEY, KEY + "x", KEY + "xy", "ключ-0123456789abcdef"):
        assert _bearer_from_subprotocols(["orderengine", encoded(key)]) == f"Bearer {key}"

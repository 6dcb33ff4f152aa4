"""WebSocket endpoints: one order's stream, under the brief's URL and the order's path."""

from __future__ import annotations

from typing import Any

from litestar.handlers import websocket

from api.order_stream import stream_order


@websocket("/ws")
async def ws_order(socket: Any) -> None:
    await stream_order(socket, socket.app.state)


@websocket("/api/orders/{order_id:str}/stream")
async def ws_order_stream(socket: Any, order_id: str) -> None:
    await stream_order(socket, socket.app.state, order_id)


WS_ROUTES = [ws_order, ws_order_stream]

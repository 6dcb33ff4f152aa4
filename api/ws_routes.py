"""WebSocket endpoints: one order (the brief's `/ws?orderId=` and the order's path),
a user's orders (`/ws?userId=`), and submit-then-stream on `/api/orders/execute`."""

from __future__ import annotations

from typing import Any

from litestar import WebSocket
from litestar.handlers import websocket
from litestar.params import FromPath

from api.order_stream import stream_from_query, stream_order, submit_and_stream


@websocket("/ws")
async def ws_stream(socket: WebSocket[Any, Any, Any]) -> None:
    await stream_from_query(socket, socket.app.state)


@websocket("/api/orders/{order_id:str}/stream")
async def ws_order_stream(socket: WebSocket[Any, Any, Any], order_id: FromPath[str]) -> None:
    await stream_order(socket, socket.app.state, order_id)


@websocket("/api/orders/execute")
async def ws_submit(socket: WebSocket[Any, Any, Any]) -> None:
    await submit_and_stream(socket, socket.app.state)


WS_ROUTES = [ws_stream, ws_order_stream, ws_submit]

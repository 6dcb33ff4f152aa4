"""WebSocket endpoints: one order (the brief's `/ws?orderId=` and the order's path),
a user's orders (`/ws?userId=`), and submit-then-stream on `/api/orders/execute`."""

from __future__ import annotations

from typing import Any

from litestar.handlers import websocket

from api.order_stream import stream_from_query, stream_order, submit_and_stream


@websocket("/ws")
async def ws_stream(socket: Any) -> None:
    await stream_from_query(socket, socket.app.state)


@websocket("/api/orders/{order_id:str}/stream")
async def ws_order_stream(socket: Any, order_id: str) -> None:
    await stream_order(socket, socket.app.state, order_id)


@websocket("/api/orders/execute")
async def ws_submit(socket: Any) -> None:
    await submit_and_stream(socket, socket.app.state)


WS_ROUTES = [ws_stream, ws_order_stream, ws_submit]

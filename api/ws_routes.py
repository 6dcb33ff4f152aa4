"""WebSocket endpoints: one order (the brief's `/ws?orderId=` and the order's path),
a user's orders (`/ws?userId=`), and submit-then-stream on `/api/orders/execute`."""

from __future__ import annotations

from typing import Any

from litestar import WebSocket
from litestar.handlers import websocket
from litestar.params import FromPath

from api.context import ApiDependency
from api.order_stream import stream_from_query, stream_order, submit_and_stream


@websocket("/ws")
async def ws_stream(socket: WebSocket[Any, Any, Any], api: ApiDependency) -> None:
    await stream_from_query(socket, api)


@websocket("/api/orders/{order_id:str}/stream")
async def ws_order_stream(
    socket: WebSocket[Any, Any, Any], order_id: FromPath[str], api: ApiDependency
) -> None:
    await stream_order(socket, api, order_id)


@websocket("/api/orders/execute")
async def ws_submit(socket: WebSocket[Any, Any, Any], api: ApiDependency) -> None:
    await submit_and_stream(socket, api)


WS_ROUTES = [ws_stream, ws_order_stream, ws_submit]

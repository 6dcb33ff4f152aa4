"""A WebSocket client that collects an order's messages until the server closes."""

from __future__ import annotations

import json
from typing import Any

import websockets


async def collect(
    base_url: str, order_id: str, from_version: int | None = None, timeout: float = 30
) -> tuple[list[dict[str, Any]], int | None]:
    """All messages for the order, and the close code."""
    import anyio

    url = base_url.replace("http://", "ws://") + f"/ws?orderId={order_id}"
    if from_version is not None:
        url += f"&fromVersion={from_version}"
    messages: list[dict[str, Any]] = []
    with anyio.fail_after(timeout):
        async with websockets.connect(url) as ws:
            try:
                async for raw in ws:
                    messages.append(json.loads(raw))
            except websockets.ConnectionClosed:
                pass
            return messages, ws.close_code

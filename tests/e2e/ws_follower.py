"""Following an order's WebSocket stream the way a client of the documented protocol
does: reconnecting after a drop with `fromVersion` of the last event it saw."""

from __future__ import annotations

import json
from typing import Any

import anyio
import psutil
import websockets

from tests.e2e.engine import Engine


def api_process(engine: Engine) -> psutil.Process:
    assert engine.proc is not None
    for child in psutil.Process(engine.proc.pid).children():
        if "api" in child.cmdline():
            return child
    raise AssertionError("no api process under the supervisor")


async def follow(engine: Engine, order_id: str, seen: list[dict[str, Any]]) -> None:
    """Follow the order to its end, reconnecting with fromVersion after each drop."""
    url = engine.base_url.replace("http://", "ws://") + f"/ws?orderId={order_id}"
    while True:
        last = seen[-1]["version"] if seen else 0
        try:
            async with websockets.connect(f"{url}&fromVersion={last}", open_timeout=2) as ws:
                async for raw in ws:
                    seen.append(json.loads(raw))
                if ws.close_code == 1000:
                    return
        except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake, TimeoutError):
            pass  # the API is down or restarting: try again
        await anyio.sleep(0.2)


async def until_following_mid_step(streams: dict[str, list[dict[str, Any]]], timeout: float = 20) -> None:
    """Until every client has had an event (it is connected) and some order is mid-step:
    the moment a drill kills the API, rather than after a fixed time."""
    with anyio.fail_after(timeout):
        while not (
            all(streams.values())
            and any(s[-1]["status"] in ("routing", "building", "submitted") for s in streams.values())
        ):
            await anyio.sleep(0.05)

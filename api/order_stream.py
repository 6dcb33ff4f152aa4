"""WebSocket stream of one order's events, tailed from its Redis stream.

History first (XRANGE from the client's `fromVersion`), then live entries
(XREAD BLOCK); the entry id is the order's event version, so nothing is
missed or repeated across the switch. A second task waits on the socket so a
client that leaves is noticed at once and the Redis read is cancelled.
The connection closes with 1000 after a terminal event, 1008 on bad parameters.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

import anyio
import msgspec
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect

from api.client_messages import client_message
from domain.events import decode_event
from domain.order import TERMINAL
from projections.redis_relay import order_stream_key

log = logging.getLogger("orderengine.ws")

# Below redis-py 8's default 5 s socket timeout, which would otherwise end an idle
# subscription with a TimeoutError while its order waits (e.g. for a rate-limit slot).
BLOCK_MS = 2_000


async def stream_order(socket: Any, state: State) -> None:
    try:
        await _stream_order(socket, state)
    except WebSocketDisconnect:
        pass
    except Exception:
        # Litestar would close with 4500 and log nothing; say what broke, close with 1011.
        log.exception("websocket stream failed", extra={"path": str(socket.url)})
        with contextlib.suppress(Exception):
            await socket.close(code=1011, reason="internal error")


async def _stream_order(socket: Any, state: State) -> None:
    await socket.accept()
    raw_id = socket.query_params.get("orderId")
    try:
        order_id = str(uuid.UUID(raw_id or ""))
        from_version = int(socket.query_params.get("fromVersion", "0"))
        if from_version < 0:
            raise ValueError
    except ValueError:
        await socket.close(code=1008, reason="orderId must be a UUID and fromVersion a whole number >= 0")
        return
    if not await state.store.stream_exists(order_id):
        await socket.close(code=1008, reason=f"unknown order {order_id}")
        return

    finished = False
    async with anyio.create_task_group() as tg:

        async def watch_client() -> None:
            try:
                while True:
                    await socket.receive_data(mode="text")
            except WebSocketDisconnect:
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(watch_client)
        try:
            finished = await _pump(socket, state, order_id, from_version)
        except WebSocketDisconnect:
            pass
        tg.cancel_scope.cancel()
    if finished:
        await socket.close(code=1000, reason="order finished")


async def _pump(socket: Any, state: State, order_id: str, from_version: int) -> bool:
    """Send events after `from_version` until a terminal one; True when it ends so."""
    key = order_stream_key(state.settings.redis_prefix, order_id)
    last_id = f"{from_version}-0"
    history = await state.redis.xrange(key, min=f"({last_id}", max="+")
    while True:
        for entry_id, fields in history:
            last_id = entry_id
            await socket.send_data(msgspec.json.encode(_message(order_id, fields)).decode())
            if fields.get("status") in TERMINAL:
                return True
        reply = await state.redis.xread({key: last_id}, block=BLOCK_MS, count=100)
        history = reply[0][1] if reply else []


def _message(order_id: str, fields: dict[str, str]) -> dict[str, Any]:
    return client_message(
        order_id, int(fields["version"]), decode_event(fields["event"]), fields["recorded_at"]
    )

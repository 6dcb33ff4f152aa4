"""WebSocket stream of one order's events.

History first, from the Postgres log (versions after the client's
`fromVersion`), then live entries tailed from the order's Redis stream (XREAD
BLOCK from the last version sent; entry ids are versions), de-duplicated by
version, so nothing is missed or repeated across the switch and a trimmed
Redis stream costs nothing. A second task waits on the socket so a
client that leaves is noticed at once and the Redis read is cancelled.
The connection closes with 1000 after a terminal event, 1008 on bad parameters.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import datetime
from typing import Any

import anyio
import msgspec
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect

from api.client_messages import client_message
from domain.events import decode_event
from domain.order import INTERNAL_EVENTS, TERMINAL
from domain.ports import EventMetadata, RecordedEvent
from projections.redis_relay import order_stream_key

log = logging.getLogger("orderengine.ws")

_metadata_decoder = msgspec.json.Decoder(EventMetadata)

# Below redis-py 8's default 5 s socket timeout, which would otherwise end an idle
# subscription with a TimeoutError while its order waits (e.g. for a rate-limit slot).
BLOCK_MS = 2_000


async def stream_order(socket: Any, state: State, order_id: str | None = None) -> None:
    """Stream one order; its id comes from the path, else from `?orderId=`."""
    try:
        await _stream_order(socket, state, order_id)
    except WebSocketDisconnect:
        pass
    except Exception:
        # Litestar would close with 4500 and log nothing; say what broke, close with 1011.
        log.exception("websocket stream failed", extra={"path": str(socket.url)})
        with contextlib.suppress(Exception):
            await socket.close(code=1011, reason="internal error")


async def _stream_order(socket: Any, state: State, path_order_id: str | None) -> None:
    await socket.accept()
    raw_id = path_order_id or socket.query_params.get("orderId")
    try:
        order_id = str(uuid.UUID(raw_id or ""))
        from_version = int(socket.query_params.get("fromVersion", "0"))
        if from_version < 0:
            raise ValueError
    except ValueError:
        await socket.close(code=1008, reason="orderId must be a UUID and fromVersion a whole number >= 0")
        return
    history = [r for r in await state.store.read_stream(order_id) if r.version > from_version]
    if not history and not await state.store.stream_exists(order_id):
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
            finished = await _pump(socket, state, order_id, history, from_version)
        except WebSocketDisconnect:
            pass
        tg.cancel_scope.cancel()
    if finished:
        await socket.close(code=1000, reason="order finished")


async def _pump(socket: Any, state: State, order_id: str, history: list[RecordedEvent], sent: int) -> bool:
    """Send history, then live events, each version once and in order; True once a final one is sent.

    A live entry that skips versions (trimmed, or read after a reconnect) is
    preceded by the missing ones from Postgres, so the client never sees a gap.
    """
    key = order_stream_key(state.settings.redis_prefix, order_id)
    pending = history
    while True:
        for recorded in pending:
            if recorded.version <= sent:
                continue  # already sent: de-duplicate by version
            if type(recorded.event) in INTERNAL_EVENTS:
                sent = recorded.version  # the engine's own bookkeeping: passed over, not sent
                continue
            message = client_message(
                order_id, recorded.version, recorded.event, recorded.recorded_at.isoformat()
            )
            await socket.send_data(msgspec.json.encode(message).decode())
            sent = recorded.version
            if message["status"] in TERMINAL:
                return True
        reply = await state.redis.xread({key: f"{sent}-0"}, block=BLOCK_MS, count=100)
        entries = reply[0][1] if reply else []
        if entries and int(entries[0][1]["version"]) > sent + 1:
            pending = [r for r in await state.store.read_stream(order_id) if r.version > sent]
        else:
            pending = [_recorded(order_id, fields) for _, fields in entries]


def _recorded(order_id: str, fields: dict[str, str]) -> RecordedEvent:
    return RecordedEvent(
        position=int(fields["position"]),
        stream_id=order_id,
        version=int(fields["version"]),
        type=fields["type"],
        event=decode_event(fields["event"]),
        metadata=_metadata_decoder.decode(fields["metadata"]),
        recorded_at=datetime.fromisoformat(fields["recorded_at"]),
    )

"""WebSocket streams: one order, every order of a user, every order (an operator's), or an
order submitted on the socket.

Each stream sends history first, from the Postgres log, then live entries from
the process's shared reader (api/fanout.py), de-duplicated by version (one
order) or position (a user, or everyone), so nothing is missed or repeated across the switch
and a trimmed Redis stream costs nothing. A gap (entries dropped for a slow
socket, a Redis outage) is filled from Postgres before anything newer is sent.

A second task waits on the socket, so a client that leaves is noticed at once
and its subscription dropped. An order's stream closes with 1000 after the
final event (WS_CLOSE_ON_TERMINAL); bad parameters close with 1008 and a reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import msgspec
from litestar.exceptions import WebSocketDisconnect
from uvicorn.protocols.utils import ClientDisconnected

from adapters.metrics import websocket_connection
from api import input_rules
from api.auth import caller_of, owner_of, sees_every_order
from api.context import Api
from api.fanout import StreamHub, Subscription
from api.input_rules import MAX_POSITION, MAX_VERSION, identifier, whole_number
from api.live_entry import LiveEntry, is_internal, order_message_text, user_message_text
from api.order_placing import place
from api.request_error import RequestError
from domain.errors import DomainError, RateLimited
from domain.order import TERMINAL, status_of
from domain.ports import RecordedEvent

log = logging.getLogger("orderengine.ws")

HISTORY_PAGE = 1_000
FIRST_MESSAGE_TIMEOUT_S = 30.0
# A send to a client that has gone raises ClientDisconnected (uvicorn) rather than
# WebSocketDisconnect (Litestar, on receive): both mean the client left, not a bug.
CLIENT_LEFT = (WebSocketDisconnect, ClientDisconnected)


class Refused(Exception):
    """Close the socket with this code and reason (bad parameters, not allowed)."""

    def __init__(self, reason: str, code: int = 1008) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason.encode()[:123].decode(errors="ignore")  # the protocol's limit

    @classmethod
    def of(cls, error: RequestError) -> Refused:
        """A parameter that fails its rule (api/input_rules.py): the rule's message, as HTTP's 422 says it."""
        return cls(error.message)


# -- entry points -----------------------------------------------------------------


async def stream_from_query(socket: Any, api: Api) -> None:
    """`/ws?orderId=…[&fromVersion=N]` streams one order, `/ws?userId=…[&fromPosition=N]` a user's,
    `/ws?all=true[&fromPosition=N]` every order."""
    query = socket.query_params
    if query.get("all") is not None:
        await _serve(socket, api, lambda: _all_stream(socket, api, query.get("all")))
    elif query.get("orderId") is None and query.get("userId") is not None:
        await _serve(socket, api, lambda: _user_stream(socket, api, query.get("userId")))
    else:
        await _serve(socket, api, lambda: _order_stream(socket, api, query.get("orderId")))


async def stream_order(socket: Any, api: Api, order_id: str) -> None:
    """`/api/orders/{id}/stream`: one order."""
    await _serve(socket, api, lambda: _order_stream(socket, api, order_id))


async def submit_and_stream(socket: Any, api: Api) -> None:
    """`/api/orders/execute` as a WebSocket: the first message is the order, then its lifecycle."""
    await _serve(socket, api, lambda: _submit(socket, api))


# -- connection handling --------------------------------------------------------------


async def _serve(socket: Any, api: Api, run: Callable[[], Awaitable[None]]) -> None:
    await socket.accept()
    owner = caller_of(socket) or f"ip:{socket.client.host if socket.client else 'unknown'}"
    if not api.ws_limits.acquire(owner):
        await _close(socket, 1008, "too many open WebSocket connections for this user")
        return
    try:
        with websocket_connection():
            try:
                await run()
            except RequestError as error:  # a query or path parameter that fails its rule
                raise Refused.of(error) from None
    except Refused as refused:
        query = socket.scope.get("query_string", b"").decode("latin-1")
        log.info(
            "websocket refused",
            extra={
                "path": _shown(socket.scope.get("path", "") + (f"?{query}" if query else "")),
                "code": refused.code,
                "reason": refused.reason,
            },
        )
        await _close(socket, refused.code, refused.reason)
    except CLIENT_LEFT:
        pass
    except Exception:
        # Litestar would close with 4500 and log nothing; say what broke, close with 1011.
        log.exception("websocket stream failed", extra={"path": str(socket.url)})
        await _close(socket, 1011, "internal error")
    finally:
        api.ws_limits.release(owner)


def _shown(path: str, limit: int = 200) -> str:
    """A path for a log line: a client may send kilobytes of it."""
    return path if len(path) <= limit else f"{path[:limit]}… ({len(path)} characters)"


async def _close(socket: Any, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await socket.close(code=code, reason=reason)


async def _until_client_leaves(
    socket: Any, pump: Callable[[], Awaitable[bool]], close_when_done: bool
) -> bool:
    """Run `pump` while watching the socket; True if it finished (and the socket should close)."""
    finished = False
    async with anyio.create_task_group() as tg:

        async def watch_client() -> None:
            with contextlib.suppress(*CLIENT_LEFT):
                while True:
                    await socket.receive_data(mode="text")
            tg.cancel_scope.cancel()

        tg.start_soon(watch_client)
        with contextlib.suppress(*CLIENT_LEFT):
            finished = await pump()
        if finished and close_when_done:
            tg.cancel_scope.cancel()
        # Otherwise keep the socket open (quiet) until the client leaves.
    return finished and close_when_done


def _resume_point(query: Any, maximum: int, *names: str) -> int:
    """The first of `names` given, by the whole-number rule up to `maximum` (the store's
    column range); 0 when none is."""
    for name in names:
        raw = query.get(name)
        if raw is not None:
            return whole_number(name, raw, maximum)
    return 0


# -- one order ------------------------------------------------------------------------


async def _order_stream(socket: Any, api: Api, raw_id: str | None, from_version: int | None = None) -> None:
    try:
        oid = input_rules.order_id("orderId", raw_id or "")
    except RequestError as error:
        raise Refused(f"{error.message} (or give userId to stream a user's orders)") from None
    if from_version is None:
        # `lastEventId` lets an EventSource-style client resume with the last version it saw.
        from_version = _resume_point(socket.query_params, MAX_VERSION, "fromVersion", "lastEventId")
    hub: StreamHub = api.hub
    with hub.order(oid) as sub:  # before reading history: nothing can fall between
        history = await api.engine.store.read_stream(oid)
        caller = caller_of(socket)
        if not history or (caller is not None and owner_of(history) != caller):
            raise Refused(f"unknown order {oid}")
        pending = [r for r in history if r.version > from_version]
        # A client resuming at or past the final event has nothing to wait for.
        ended = any(status_of(r.event) in TERMINAL for r in history if r.version <= from_version)

        async def pump() -> bool:
            return ended or await _pump_order(socket, api, oid, sub, pending, from_version)

        finished = await _until_client_leaves(socket, pump, api.settings.ws_close_on_terminal)
    if finished:
        await _close(socket, 1000, "order finished")


async def _pump_order(
    socket: Any,
    api: Api,
    order_id: str,
    sub: Subscription,
    pending: Sequence[RecordedEvent | LiveEntry],
    sent: int,
) -> bool:
    """Send each version once and in order; True once a final one is sent (or, for a client
    that resumed past it, stored)."""
    while True:
        for item in pending:
            recorded = item.recorded if isinstance(item, LiveEntry) else item
            if recorded.version <= sent:
                if status_of(recorded.event) in TERMINAL:
                    return True  # the order ended at or before the client's resume point
                continue
            sent = recorded.version
            if is_internal(recorded):
                continue  # the engine's own bookkeeping: passed over, not sent
            text = item.order_text if isinstance(item, LiveEntry) else order_message_text(recorded)
            await socket.send_data(text)
            if status_of(recorded.event) in TERMINAL:
                return True
        batch = await sub.next_batch()
        if sub.take_overflow() or not _follows([entry.version for entry in batch], sent):
            pending = [r for r in await api.engine.store.read_stream(order_id) if r.version > sent]
        else:
            pending = batch


def _follows(versions: Sequence[int], sent: int) -> bool:
    """The new versions continue exactly from `sent`, with none missing."""
    expected = sent + 1
    for version in versions:
        if version < expected:
            continue
        if version != expected:
            return False
        expected += 1
    return True


# -- every order of a user -------------------------------------------------------------


async def _user_stream(socket: Any, api: Api, user_id: str) -> None:
    caller = caller_of(socket)
    identifier("userId", user_id)  # the HTTP rule: a NUL would fail in Postgres
    if caller is not None and user_id != caller:
        raise Refused("an API key streams only its own user's orders")
    after = _resume_point(socket.query_params, MAX_POSITION, "fromPosition", "lastEventId")
    hub: StreamHub = api.hub

    async def read(after: int) -> list[RecordedEvent]:
        return await api.engine.store.read_user_events(user_id, after, HISTORY_PAGE)

    with hub.user(user_id) as sub:
        await _until_client_leaves(
            socket, lambda: _pump_positions(socket, read, sub, after), close_when_done=False
        )


# -- every order (an operator, or anyone on an open API) ---------------------------------


async def _all_stream(socket: Any, api: Api, flag: str) -> None:
    if flag != "true":
        raise Refused("all must be true (to stream every order)")
    if socket.query_params.get("orderId") is not None or socket.query_params.get("userId") is not None:
        raise Refused("give one of orderId, userId or all=true")
    if not sees_every_order(socket):
        raise Refused("only an operator key streams every order (all=true); give userId for your own")
    after = _resume_point(socket.query_params, MAX_POSITION, "fromPosition", "lastEventId")

    async def read(after: int) -> list[RecordedEvent]:
        return await api.engine.store.read_all(after, HISTORY_PAGE)

    hub: StreamHub = api.hub
    with hub.everything() as sub:
        await _until_client_leaves(
            socket, lambda: _pump_positions(socket, read, sub, after), close_when_done=False
        )


# -- streams ordered by the log's position (a user's, everyone's) ----------------------------

ReadPage = Callable[[int], Awaitable[list[RecordedEvent]]]


async def _pump_positions(socket: Any, read: ReadPage, sub: Subscription, after: int) -> bool:
    """History by position from Postgres, then live entries; never finishes by itself."""
    after = await _send_history(socket, read, after)
    while True:
        batch = await sub.next_batch()
        if sub.take_overflow():
            after = await _send_history(socket, read, after)
            continue
        for entry in batch:
            if entry.position <= after:
                continue
            after = entry.position
            if not is_internal(entry.recorded):
                await socket.send_data(entry.user_text)


async def _send_history(socket: Any, read: ReadPage, after: int) -> int:
    while True:
        page = await read(after)
        for recorded in page:
            if not is_internal(recorded):
                await socket.send_data(user_message_text(recorded))
            after = recorded.position
        if len(page) < HISTORY_PAGE:
            return after


# -- submit on the socket ----------------------------------------------------------------


async def _submit(socket: Any, api: Api) -> None:
    try:
        with anyio.fail_after(FIRST_MESSAGE_TIMEOUT_S):
            first = await socket.receive_data(mode="text")
    except TimeoutError:
        raise Refused(f"send the order as the first message within {FIRST_MESSAGE_TIMEOUT_S:.0f} s") from None
    raw = first.encode() if isinstance(first, str) else bytes(first or b"")
    try:
        accepted = await place(
            api.engine.placement,
            api.settings,
            raw,
            caller=caller_of(socket),
            idempotency_key=socket.headers.get("idempotency-key"),
        )
    except RequestError as exc:
        await _send_error(socket, exc.code, exc.message, exc.field)
        raise Refused(f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
    except RateLimited as exc:
        await _send_error(socket, "rate_limited", str(exc), retry_after_s=exc.retry_after_s)
        raise Refused("too many orders: try again later", code=1013) from None
    except DomainError as exc:
        await _send_error(socket, "conflict", str(exc), status=getattr(exc, "status", None))
        raise Refused(str(exc)) from None
    await socket.send_data(msgspec.json.encode(accepted).decode())
    await _order_stream(socket, api, accepted["orderId"], from_version=0)


async def _send_error(
    socket: Any,
    code: str,
    message: str,
    field: str | None = None,
    retry_after_s: float | None = None,
    status: str | None = None,
) -> None:
    """The HTTP error body, on the socket, before it closes."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    if status is not None:
        error["status"] = status  # where the order stands, as a 409 says
    if retry_after_s is not None:
        error["retryAfterS"] = round(retry_after_s, 3)
    await socket.send_data(msgspec.json.encode({"error": error}).decode())

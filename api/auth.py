"""API keys: who is calling, and which orders they may see.

With `API_KEYS` set, every endpoint except the probes and the schema needs
`Authorization: Bearer <key>`; the key's user is put on the connection
(`connection.user`) and overrides any `userId` a client sends. Other users'
orders answer 404, exactly like orders that do not exist, so a caller learns
nothing about them.

An operator key (`OPERATOR_KEYS`) belongs to no user: `connection.user` is None, as on
an open API, so every order is visible and cancellable, and `connection.scope["role"]`
says "operator". With no keys at all the API is open (role "open"): anyone may already
list every order, so the all-orders stream is open too; a user key (role "user") never
gets it.

A browser cannot set headers on a WebSocket handshake, so a WebSocket may carry the key
in `Sec-WebSocket-Protocol` instead: it offers the subprotocols `orderengine` and
`bearer.<the key in base64url, unpadded>`, and the server accepts with `orderengine`
(never echoing the key). The query string would do too, but it is logged; this header is not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import OrderNotFound
from domain.events import OrderPending
from domain.ports import RecordedEvent

log = logging.getLogger("orderengine.auth")

# Probes must answer without credentials (orchestrators have none); the schema is public
# documentation; the dashboard's page and files hold no data (the page asks for the key).
PUBLIC_PATHS = ("^/healthz$", "^/readyz$", "^/schema", "^/$", "^/dashboard/")
# The subprotocol a browser's WebSocket offers (with its key) and the server accepts.
WS_SUBPROTOCOL = "orderengine"
_WS_KEY_PREFIX = "bearer."


Role = Literal["open", "user", "operator"]


@dataclass(frozen=True)
class Caller:
    """Who a key names: a user (who sees their own orders) or an operator (who sees all)."""

    user: str | None
    role: Role


OPERATOR = Caller(user=None, role="operator")


class KeyRing:
    """Looks keys up by their SHA-256, so no comparison runs over the secret itself."""

    def __init__(self, keys: dict[str, str], operators: Iterable[str] = ()) -> None:
        self._callers = {_digest(key): Caller(user=user, role="user") for key, user in keys.items()}
        self._callers.update({_digest(key): OPERATOR for key in operators})

    def __bool__(self) -> bool:
        return bool(self._callers)

    def caller_for(self, authorization: str | None) -> Caller | None:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        digest = _digest(key.strip())
        found = None
        for known, caller in self._callers.items():
            # Every digest is compared, so the time taken does not say which key matched.
            if hmac.compare_digest(known, digest):
                found = caller
        return found

    def user_for(self, authorization: str | None) -> str | None:
        caller = self.caller_for(authorization)
        return caller.user if caller is not None else None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class AuthMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_path_pattern = PUBLIC_PATHS

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        offered = list(scope.get("subprotocols") or ()) if scope["type"] == ScopeType.WEBSOCKET else []
        if WS_SUBPROTOCOL in offered:
            send = _accepting_subprotocol(send)
        if not self.keys:
            scope["user"] = None
            scope["role"] = "open"  # type: ignore[typeddict-unknown-key]
            await next_app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw = headers.get(b"authorization")
        authorization = raw.decode("latin-1") if raw is not None else _bearer_from_subprotocols(offered)
        caller = self.keys.caller_for(authorization)
        if caller is None:
            await _refuse(scope, receive, send)
            return
        scope["user"] = caller.user
        scope["role"] = caller.role  # type: ignore[typeddict-unknown-key]
        await next_app(scope, receive, send)


def _bearer_from_subprotocols(offered: Sequence[str]) -> str | None:
    """`bearer.<base64url key>` among the offered subprotocols, as an Authorization value."""
    for protocol in offered:
        if protocol.startswith(_WS_KEY_PREFIX):
            encoded = protocol.removeprefix(_WS_KEY_PREFIX)
            try:
                padded = encoded + "=" * (-len(encoded) % 4)
                key = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return f"Bearer {key}"
    return None


def _accepting_subprotocol(send: Send) -> Send:
    """A browser drops a connection accepted without one of the subprotocols it offered."""

    async def send_with_subprotocol(message: Message) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol"):
            message = {**message, "subprotocol": WS_SUBPROTOCOL}
        await send(message)

    return send_with_subprotocol


_UNAUTHORIZED = (
    b'{"error":{"code":"unauthorized","message":"missing or unknown API key: '
    b'send Authorization: Bearer <key>","field":"Authorization"}}'
)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == ScopeType.WEBSOCKET:
        # Accept, then close with a reason: a refused handshake tells a browser client nothing.
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})  # type: ignore[typeddict-item]
        await send({"type": "websocket.close", "code": 1008, "reason": "missing or unknown API key"})  # type: ignore[typeddict-item]
        return
    await send(
        {  # type: ignore[typeddict-item]
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="orderengine"'),
                (b"content-length", str(len(_UNAUTHORIZED)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAUTHORIZED})  # type: ignore[typeddict-item]


def caller_of(connection: Any) -> str | None:
    """The authenticated user, or None when the API runs open or the key is an operator's:
    None is what lets every check below see every order."""
    return connection.scope.get("user")


def role_of(connection: Any) -> Role:
    """ "user", "operator" or "open" (no keys configured). A scope the middleware never saw
    (a unit test's bare app) is open, as its `user` is None."""
    role: Role = connection.scope.get("role") or "open"
    return role


def sees_every_order(connection: Any) -> bool:
    """May list and follow every user's orders: an operator, or anyone on an open API."""
    return role_of(connection) != "user"


def cancelled_by(connection: Any) -> str:
    """Who a cancel is recorded as done by: the key's user, an operator, or "user" (open API)."""
    return caller_of(connection) or ("operator" if role_of(connection) == "operator" else "user")


def ensure_visible(caller: str | None, owner: str | None, order_id: str) -> None:
    """An order of another user is reported exactly as a missing one."""
    if caller is not None and owner != caller:
        raise OrderNotFound(order_id)


def owner_of(history: Sequence[RecordedEvent]) -> str | None:
    """The user who placed the order: its first event says so."""
    first = history[0].event if history else None
    return first.user_id if isinstance(first, OrderPending) else None


def warn_if_open(keys: KeyRing) -> None:
    if not keys:
        log.warning(
            "API_KEYS and OPERATOR_KEYS are not set: the API is open, anyone who can reach it may "
            "place, read, follow and cancel orders for any userId"
        )

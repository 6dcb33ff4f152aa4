"""Order commands and reads: submit, fetch, list, events, cancel.

Handlers stay thin: they validate input, call `handle` with a domain command or
read a projection, and shape the answer.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.datastructures import State

from api.auth import caller_of, ensure_visible, owner_of
from api.errors import Forbidden
from api.order_request import RequestError
from api.order_service import place_order
from domain.commands import CancelOrder
from domain.errors import InvalidTransition, OrderNotFound
from domain.handling import handle
from domain.order import TRANSITIONS
from projections.order_views import decode_cursor, find_order, list_orders

log = logging.getLogger("orderengine.api")


# An order is a few hundred bytes; anything far larger is refused with 413 unread.
MAX_BODY_BYTES = 64 * 1024


def parse_order_id(raw: str) -> str:
    """Order ids are UUIDs; anything else cannot name an order."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise OrderNotFound(raw) from None


@post("/api/orders/execute", status_code=200)
async def execute_order(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Accept an order: stored as `pending` in the log before this answers."""
    return await place_order(
        state,
        await request.body(),
        caller=caller_of(request),
        idempotency_key=request.headers.get("idempotency-key"),
    )


@get(["/api/orders/{order_id:str}", "/orders/{order_id:str}"])
async def get_order(order_id: str, request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """The order from the read model (or folded from the log if the projection lags)."""
    order = await find_order(state.pool, state.store, parse_order_id(order_id))
    if order is None:
        raise OrderNotFound(order_id)
    ensure_visible(caller_of(request), order["userId"], order_id)
    return order


ORDER_STATUSES = frozenset(TRANSITIONS) - {"new"}
MAX_PAGE = 200


@get("/api/orders")
async def list_orders_handler(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Orders newest first: `?userId=&status=&limit=&cursor=`; `nextCursor` is null on the last page."""
    query = request.query_params
    status = query.get("status")
    if status is not None and status not in ORDER_STATUSES:
        raise RequestError(f"status must be one of {', '.join(sorted(ORDER_STATUSES))}", field="status")
    raw_limit = query.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise RequestError(f"limit must be a whole number from 1 to {MAX_PAGE}", field="limit")
    cursor = query.get("cursor")
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise RequestError(str(exc), field="cursor") from None
    user_id = query.get("userId")
    caller = caller_of(request)
    if caller is not None:
        if user_id not in (None, caller):
            raise Forbidden("an API key lists only its own user's orders", field="userId")
        user_id = caller
    orders, next_cursor = await list_orders(
        state.pool, user_id=user_id, status=status, limit=int(raw_limit), after=after
    )
    return {"orders": orders, "nextCursor": next_cursor}


@get("/api/orders/{order_id:str}/events")
async def order_events(order_id: str, request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """The order's events from the log, in order: what an auditor replays."""
    oid = parse_order_id(order_id)
    history = await state.store.read_stream(oid)
    if not history:
        raise OrderNotFound(order_id)
    ensure_visible(caller_of(request), owner_of(history), oid)
    return {
        "orderId": oid,
        "events": [
            {
                "position": r.position,
                "version": r.version,
                "type": r.type,
                "recordedAt": r.recorded_at.isoformat(),
                "data": msgspec.to_builtins(r.event),
                "metadata": msgspec.to_builtins(r.metadata),
            }
            for r in history
        ],
    }


@delete("/api/orders/{order_id:str}", status_code=200)
async def cancel_order(order_id: str, request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Cancel an order that has not started sending its swap; 409 with its status otherwise."""
    oid = parse_order_id(order_id)
    caller = caller_of(request)
    if caller is not None:
        ensure_visible(caller, owner_of(await state.store.read_stream(oid)), oid)
    try:
        order, _ = await handle(
            state.store,
            oid,
            CancelOrder(command_id=f"{oid}:cancel"),
            actor="api",
            issued_at=datetime.now(UTC),
        )
    except InvalidTransition as exc:
        if exc.status == "new":
            raise OrderNotFound(oid) from None
        raise
    log.info("order cancelled", extra={"orderId": oid, "userId": order.user_id, "status": order.status})
    return {"orderId": oid, "status": order.status, "message": "Order cancelled"}


ORDER_ROUTES = [execute_order, get_order, list_orders_handler, order_events, cancel_order]

"""Order commands and reads: submit, fetch, list, events, cancel.

Handlers stay thin: they validate input, call `handle` with a domain command or
read a projection, and shape the answer.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import msgspec
from litestar import Request, delete, get, post
from litestar.datastructures import State

from adapters.settings import Settings
from api.order_request import RequestError, parse_order_request
from domain.commands import CancelOrder, PlaceOrder
from domain.errors import DomainError, InvalidTransition, OrderNotFound
from domain.events import OrderPending
from domain.handling import handle
from domain.order import TRANSITIONS
from projections.order_views import decode_cursor, find_order, list_orders
from workers.actors import OrderActors

log = logging.getLogger("orderengine.api")


# An order is a few hundred bytes; anything far larger is refused with 413 unread.
MAX_BODY_BYTES = 64 * 1024

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b")


class IdempotencyKeyReused(DomainError):
    def __init__(self, status: str) -> None:
        super().__init__("this idempotency key already names a different order")
        self.status = status


def _same_order(stored: object, command: PlaceOrder) -> bool:
    """The stored order is the one requested (its default expiry may differ between retries)."""
    if not isinstance(stored, OrderPending):
        return False
    fields = ("user_id", "order_type", "token_in", "token_out", "amount", "limit_price", "slippage_tolerance")
    return all(getattr(stored, f) == getattr(command, f) for f in fields)


def parse_order_id(raw: str) -> str:
    """Order ids are UUIDs; anything else cannot name an order."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise OrderNotFound(raw) from None


@post("/api/orders/execute", status_code=200)
async def execute_order(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Accept an order: stored as `pending` in the log before this answers."""
    settings: Settings = state.settings
    body = parse_order_request(
        await request.body(),
        max_slippage=settings.max_slippage,
        default_slippage=settings.default_slippage,
        now=datetime.now(UTC),
        default_ttl=timedelta(seconds=settings.limit_default_ttl_s),
        max_ttl=timedelta(seconds=settings.limit_max_ttl_s),
    )
    key = request.headers.get("idempotency-key") or body.clientOrderId
    if key is not None and not 1 <= len(key) <= 128:
        raise RequestError("Idempotency-Key must be 1 to 128 characters", field="Idempotency-Key")
    # With a key the order id is derived from (user, key): a retry, even a concurrent one,
    # names the same order, and the log's command idempotency stores it once.
    order_id = str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{body.userId}\x00{key}") if key else uuid.uuid4())
    is_new = key is None or not await state.store.stream_exists(order_id)
    command = PlaceOrder(
        command_id=order_id,
        order_id=order_id,
        user_id=body.userId,
        order_type=body.orderType,
        token_in=body.tokenIn,
        token_out=body.tokenOut,
        amount=body.amount,
        limit_price=body.limitPrice,
        expires_at=body.expiresAt,
        slippage_tolerance=body.slippageTolerance
        if body.slippageTolerance is not None
        else settings.default_slippage,
    )
    order, recorded = await handle(state.store, order_id, command, actor="api", issued_at=datetime.now(UTC))
    if key is not None and not _same_order(recorded[0].event, command):
        raise IdempotencyKeyReused(order.status)
    if is_new:
        actors: OrderActors = state.actors
        await anyio.to_thread.run_sync(
            partial(actors.send, "route", order_id, priority=body.orderType == "sniper")
        )
    log.info(
        "order accepted",
        extra={"orderId": order_id, "userId": body.userId, "orderType": body.orderType, "step": "pending"},
    )
    return {
        "orderId": order_id,
        "status": order.status,
        "message": "Order accepted; stream its progress from streamUrl"
        if is_new
        else "Order already accepted under this idempotency key",
        "streamUrl": f"/ws?orderId={order_id}",
    }


@get(["/api/orders/{order_id:str}", "/orders/{order_id:str}"])
async def get_order(order_id: str, state: State) -> dict[str, Any]:
    """The order from the read model (or folded from the log if the projection lags)."""
    order = await find_order(state.pool, state.store, parse_order_id(order_id))
    if order is None:
        raise OrderNotFound(order_id)
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
    orders, next_cursor = await list_orders(
        state.pool, user_id=query.get("userId"), status=status, limit=int(raw_limit), after=after
    )
    return {"orders": orders, "nextCursor": next_cursor}


@get("/api/orders/{order_id:str}/events")
async def order_events(order_id: str, state: State) -> dict[str, Any]:
    """The order's events from the log, in order: what an auditor replays."""
    oid = parse_order_id(order_id)
    history = await state.store.read_stream(oid)
    if not history:
        raise OrderNotFound(order_id)
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
async def cancel_order(order_id: str, state: State) -> dict[str, Any]:
    """Cancel an order that has not started sending its swap; 409 with its status otherwise."""
    oid = parse_order_id(order_id)
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

"""Order commands and reads: submit, fetch, list, events, cancel.

Handlers stay thin: they validate input, call one application service (placement,
cancellation) or read a projection, and shape the answer.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

import msgspec
from litestar import Request, delete, get, post
from litestar.params import PathParameter
from msgspec import UNSET

from api import input_rules
from api.auth import caller_of, cancelled_by, ensure_visible, owner_of
from api.context import ApiDependency
from api.errors import Forbidden
from api.input_rules import in_path
from api.openapi_docs import (
    BEARER,
    IDEMPOTENCY_CONFLICT,
    IDEMPOTENCY_KEY_HEADER,
    LIST_QUERY,
    ORDER_BODY,
    documented,
    errors,
    ok,
)
from api.order_placing import place
from api.order_request import OrderStatus, RequestError, parse_list_query
from api.schemas import (
    CancelResult,
    EventMetadataView,
    OrderAccepted,
    OrderEvents,
    OrderPage,
    OrderView,
    RecordedEventView,
)
from domain.errors import OrderNotFound
from projections.order_views import decode_cursor, find_order, list_orders

log = logging.getLogger("orderengine.api")


# An order is a few hundred bytes; anything far larger is refused with 413 unread.
MAX_BODY_BYTES = 64 * 1024


# Any string is accepted (and answered 404 unless it is an order's UUID); documented as a UUID.
OrderIdPath = Annotated[str, PathParameter(description="The order's id", schema_extra={"format": "uuid"})]


def parse_order_id(raw: str) -> str:
    """Order ids are UUIDs (the WebSocket's rule too); anything else names no order: 404,
    saying why."""
    return in_path(input_rules.order_id, "orderId", raw)


@post(
    "/api/orders/execute",
    status_code=200,
    security=BEARER,
    responses={
        200: ok(OrderAccepted, "accepted"),
        **errors(400, 401, 409, 413, 422, 429, 503, examples={409: IDEMPOTENCY_CONFLICT}),
    },
    operation_class=documented(body=ORDER_BODY, parameters=[IDEMPOTENCY_KEY_HEADER]),
)
async def execute_order(request: Request[Any, Any, Any], api: ApiDependency) -> OrderAccepted:
    """Accept an order: stored as `pending` in the log before this answers."""
    # The body and the header are read by hand (api/order_placing.py, shared with the
    # WebSocket submit) so that every refusal names its field; /schema documents both.
    accepted = await place(
        api.engine.placement,
        api.settings,
        await request.body(),
        caller=caller_of(request),
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return msgspec.convert(accepted, OrderAccepted)


@get(
    ["/api/orders/{order_id:str}", "/orders/{order_id:str}"],
    security=BEARER,
    responses={200: ok(OrderView, "order"), **errors(401, 404, 503)},
    operation_class=documented(),
)
async def get_order(order_id: OrderIdPath, request: Request[Any, Any, Any], api: ApiDependency) -> OrderView:
    """The order from the read model (or folded from the log if the projection lags)."""
    order = await find_order(api.engine.database.pool, api.engine.store, parse_order_id(order_id))
    if order is None:
        raise OrderNotFound(order_id)
    ensure_visible(caller_of(request), order["userId"], order_id)
    return msgspec.convert(order, OrderView)


@get(
    "/api/orders",
    security=BEARER,
    responses={200: ok(OrderPage, "page"), **errors(401, 403, 422, 503)},
    operation_class=documented(parameters=LIST_QUERY),
)
async def list_orders_handler(request: Request[Any, Any, Any], api: ApiDependency) -> OrderPage:
    """Orders newest first, filtered by user and status; `nextCursor` is null on the last page."""
    query = parse_list_query(request.query_params)
    try:
        after = decode_cursor(query.cursor) if query.cursor else None
    except ValueError as exc:
        raise RequestError(str(exc), field="cursor") from None
    user_id = None if query.userId is UNSET else query.userId
    caller = caller_of(request)
    if caller is not None:
        if user_id not in (None, caller):
            raise Forbidden("an API key lists only its own user's orders", field="userId")
        user_id = caller
    orders, next_cursor = await list_orders(
        api.engine.database.pool,
        user_id=user_id,
        status=None if query.status is UNSET else query.status,
        limit=query.limit,
        after=after,
    )
    return OrderPage(orders=msgspec.convert(orders, list[OrderView]), nextCursor=next_cursor)


@get(
    "/api/orders/{order_id:str}/events",
    security=BEARER,
    responses={200: ok(OrderEvents, "events"), **errors(401, 404, 503)},
    operation_class=documented(),
)
async def order_events(
    order_id: OrderIdPath, request: Request[Any, Any, Any], api: ApiDependency
) -> OrderEvents:
    """The order's events from the log, in order: what an auditor replays."""
    oid = parse_order_id(order_id)
    history = await api.engine.store.read_stream(oid)
    if not history:
        raise OrderNotFound(order_id)
    ensure_visible(caller_of(request), owner_of(history), oid)
    return OrderEvents(
        orderId=oid,
        events=[
            RecordedEventView(
                position=r.position,
                version=r.version,
                type=r.type,
                recordedAt=r.recorded_at.isoformat(),
                data=msgspec.to_builtins(r.event),
                metadata=msgspec.convert(msgspec.to_builtins(r.metadata), EventMetadataView),
            )
            for r in history
        ],
    )


@delete(
    "/api/orders/{order_id:str}",
    status_code=200,
    security=BEARER,
    responses={200: ok(CancelResult, "cancelled"), **errors(401, 404, 409, 503)},
    operation_class=documented(),
)
async def cancel_order(
    order_id: OrderIdPath, request: Request[Any, Any, Any], api: ApiDependency
) -> CancelResult:
    """Cancel an order that has not started sending its swap; 409 with its status otherwise."""
    oid = parse_order_id(order_id)
    caller = caller_of(request)
    # A user's key cancels only its own orders; an operator's (or an open API) any order.
    order = await api.engine.cancellation.cancel(oid, by=cancelled_by(request), owner=caller)
    # `new` is only the state before an order's first event: a cancelled order is never in it.
    return CancelResult(orderId=oid, status=cast(OrderStatus, order.status), message="Order cancelled")


ORDER_ROUTES = [execute_order, get_order, list_orders_handler, order_events, cancel_order]

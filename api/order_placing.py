"""Placing an order from a request: the body and the idempotency key checked field by
field, then the placement service (domain/services/placing.py). Shared by
`POST /api/orders/execute` and the WebSocket submit on the same URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.settings import Settings
from api.input_rules import header_identifier
from api.order_request import parse_order_request
from domain.services.placing import OrderRequest, Placed, Placement


def order_request(
    settings: Settings, raw_body: bytes, *, caller: str | None, idempotency_key: str | None
) -> OrderRequest:
    """The validated order; RequestError (api/request_error.py) naming the field that is wrong."""
    body = parse_order_request(
        raw_body,
        max_slippage=settings.max_slippage,
        default_slippage=settings.default_slippage,
        now=datetime.now(UTC),
        default_ttl=timedelta(seconds=settings.limit_default_ttl_s),
        max_ttl=timedelta(seconds=settings.limit_max_ttl_s),
        caller=caller,
    )
    assert body.userId is not None  # parse_order_request fills or refuses it
    # A header that is present is checked, even empty: ignoring an empty one would place a
    # retry as a new order. The body's clientOrderId passed the same rule in parse_order_request.
    if idempotency_key is not None:
        header_identifier("Idempotency-Key", idempotency_key)
    key = idempotency_key if idempotency_key is not None else body.clientOrderId
    return OrderRequest(
        user_id=body.userId,
        order_type=body.orderType,
        token_in=body.tokenIn,
        token_out=body.tokenOut,
        amount=body.amount,
        limit_price=body.limitPrice,
        expires_at=body.expiresAt,
        slippage_tolerance=(
            body.slippageTolerance if body.slippageTolerance is not None else settings.default_slippage
        ),
        idempotency_key=key,
    )


def accepted_body(placed: Placed) -> dict[str, Any]:
    """The answer the client gets: orderId, status, message, streamUrl."""
    if not placed.new:
        message = "Order already accepted under this idempotency key"
    elif not placed.queued:
        message = "Order accepted; the queue is unreachable, so it starts once the queue is back"
    else:
        message = "Order accepted; stream its progress from streamUrl"
    return {
        "orderId": placed.order_id,
        "status": placed.status,
        "message": message,
        "streamUrl": f"/ws?orderId={placed.order_id}",
    }


async def place(
    placement: Placement,
    settings: Settings,
    raw_body: bytes,
    *,
    caller: str | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    request = order_request(settings, raw_body, caller=caller, idempotency_key=idempotency_key)
    return accepted_body(await placement.place(request))

"""Placing an order: the one path shared by `POST /api/orders/execute` and the
WebSocket submit on the same URL.

The body is validated, the caller's submission rate checked, the order stored
as `pending` in the log (once per idempotency key) and its first step queued.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import dramatiq.errors
import redis.exceptions
from litestar.datastructures import State

from adapters.settings import Settings
from api.order_request import RequestError, parse_order_request
from domain.commands import PlaceOrder
from domain.errors import DomainError
from domain.events import OrderPending
from domain.handling import handle
from workers.actors import OrderActors

log = logging.getLogger("orderengine.api")

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b")


class IdempotencyKeyReused(DomainError):
    def __init__(self, status: str) -> None:
        super().__init__("this idempotency key already names a different order")
        self.status = status


class RateLimited(Exception):
    """The caller submits faster than ORDER_RATE_PER_MIN (+ burst) allows: answer 429."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many orders: retry in {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


def _same_order(stored: object, command: PlaceOrder) -> bool:
    """The stored order is the one requested (its default expiry may differ between retries)."""
    if not isinstance(stored, OrderPending):
        return False
    fields = ("user_id", "order_type", "token_in", "token_out", "amount", "limit_price", "slippage_tolerance")
    return all(getattr(stored, f) == getattr(command, f) for f in fields)


def _message(is_new: bool, queued: bool) -> str:
    if not is_new:
        return "Order already accepted under this idempotency key"
    if not queued:
        return "Order accepted; the queue is unreachable, so it starts once the queue is back"
    return "Order accepted; stream its progress from streamUrl"


async def place_order(
    state: State, raw_body: bytes, *, caller: str | None, idempotency_key: str | None
) -> dict[str, Any]:
    """Store the order and queue its routing; the answer the client gets: orderId, status, streamUrl."""
    settings: Settings = state.settings
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
    key = idempotency_key or body.clientOrderId
    if key is not None and not 1 <= len(key) <= 128:
        raise RequestError("Idempotency-Key must be 1 to 128 characters", field="Idempotency-Key")
    wait_s = await state.order_rate.check(body.userId)
    if wait_s > 0:
        raise RateLimited(wait_s)
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
    queued = True
    if is_new:
        actors: OrderActors = state.actors
        try:
            await anyio.to_thread.run_sync(
                partial(actors.send, "route", order_id, priority=body.orderType == "sniper")
            )
        except (redis.exceptions.RedisError, dramatiq.errors.BrokerError):
            # The order is in the log, so it is accepted: answering 503 would invite a retry
            # that finds it already there. The re-driver sends its first step once the
            # queue is back (an order pending longer than STUCK_AFTER_S is re-driven).
            queued = False
            log.warning("order stored but not queued: the queue is unreachable", extra={"orderId": order_id})
    log.info(
        "order accepted",
        extra={"orderId": order_id, "userId": body.userId, "orderType": body.orderType, "step": "pending"},
    )
    return {
        "orderId": order_id,
        "status": order.status,
        "message": _message(is_new, queued),
        "streamUrl": f"/ws?orderId={order_id}",
    }

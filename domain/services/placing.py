"""Placing an order: the one path shared by `POST /api/orders/execute` and the
WebSocket submit.

The caller's submission rate is checked, the order stored as `pending` in the log
(once per idempotency key) and its first step queued. A new order without a key has
a fresh id, so its stream is known to be empty and the append needs no read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import msgspec

from domain.commands import PlaceOrder
from domain.errors import IdempotencyKeyReused, QueueUnavailable, RateLimited
from domain.events import OrderPending, OrderType
from domain.order import Status
from domain.ports import EventStore, StepQueue, SubmissionRate
from domain.services.handling import NO_HISTORY, handle

log = logging.getLogger("orderengine.placing")

# Order ids derived from (user, idempotency key) live in this namespace.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b")


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated order, as the API parsed it."""

    user_id: str
    order_type: OrderType
    token_in: str
    token_out: str
    amount: Decimal
    slippage_tolerance: Decimal
    limit_price: Decimal | None = None
    expires_at: datetime | None = None
    # Retries with the same key (from the same user) name the same order.
    idempotency_key: str | None = None


class Placed(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    status: Status
    new: bool  # False: an earlier request with this key placed it
    queued: bool  # False: stored, but the queue was unreachable (the re-driver sends it)


def order_id_for(user_id: str, idempotency_key: str | None) -> str:
    """A fresh id, or the id that (user, key) always names."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}\x00{idempotency_key}"))


_TERMS = ("user_id", "order_type", "token_in", "token_out", "amount", "limit_price", "slippage_tolerance")


def _same_terms(stored: object, command: PlaceOrder) -> bool:
    """The stored order is the one requested (its default expiry may differ between retries)."""
    return isinstance(stored, OrderPending) and all(getattr(stored, f) == getattr(command, f) for f in _TERMS)


class Placement:
    def __init__(
        self, store: EventStore, queue: StepQueue, rate: SubmissionRate, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.queue = queue
        self.rate = rate
        self.clock = clock

    async def place(self, request: OrderRequest) -> Placed:
        """Store the order and queue its routing. RateLimited beyond the user's rate;
        IdempotencyKeyReused when the key already names an order with other terms."""
        wait_s = await self.rate.check(request.user_id)
        if wait_s > 0:
            raise RateLimited(wait_s)
        order_id = order_id_for(request.user_id, request.idempotency_key)
        command = PlaceOrder(
            command_id=order_id,
            order_id=order_id,
            user_id=request.user_id,
            order_type=request.order_type,
            token_in=request.token_in,
            token_out=request.token_out,
            amount=request.amount,
            limit_price=request.limit_price,
            expires_at=request.expires_at,
            slippage_tolerance=request.slippage_tolerance,
        )
        # Decided on an empty stream: a fresh id has none, and a keyed retry of an order that
        # exists loses the append race, re-reads, and finds its own command already stored.
        handled = await handle(
            self.store, order_id, command, actor="api", issued_at=self.clock(), history=NO_HISTORY
        )
        if request.idempotency_key is not None and not _same_terms(handled.recorded[0].event, command):
            raise IdempotencyKeyReused(handled.state.status)
        queued = True
        if handled.appended:
            try:
                await self.queue.send(
                    "route", order_id, priority=request.order_type == "sniper", state=handled.state
                )
            except QueueUnavailable:
                # The order is in the log, so it is accepted: answering 503 would invite a retry
                # that finds it already there. The re-driver sends its first step once the queue
                # is back (an order pending longer than STUCK_AFTER_S is re-driven).
                queued = False
                log.warning(
                    "order stored but not queued: the queue is unreachable", extra={"orderId": order_id}
                )
        log.info(
            "order accepted",
            extra={
                "orderId": order_id,
                "userId": request.user_id,
                "orderType": request.order_type,
                "step": "pending",
            },
        )
        return Placed(order_id=order_id, status=handled.state.status, new=handled.appended, queued=queued)

"""Cancelling an order: refused once its swap is being sent.

A cancel decided at the same time as the submit step's `SwapRequested` loses or wins
the append race, so exactly one of `cancelled` and `submitted` is ever recorded. The
execution slot of a cancelled order is given back by its next step, which finds it
ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from domain.commands import CancelOrder
from domain.errors import OrderNotFound
from domain.order import OrderState
from domain.ports import EventStore
from domain.services.handling import handle, load

log = logging.getLogger("orderengine.cancelling")


class Cancellation:
    def __init__(self, store: EventStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    async def cancel(self, order_id: str, *, by: str, owner: str | None = None) -> OrderState:
        """Cancel the order; OrderNotFound if it does not exist (or `owner` did not place it),
        CannotCancel once it can no longer be cancelled. Repeating a cancel is harmless."""
        history = await load(self.store, order_id)
        if not history.exists or (owner is not None and history.state.user_id != owner):
            raise OrderNotFound(order_id)
        handled = await handle(
            self.store,
            order_id,
            CancelOrder(command_id=f"{order_id}:cancel", by=by),
            actor="api",
            issued_at=self.clock(),
            history=history,
        )
        state = handled.state
        log.info(
            "order cancelled", extra={"orderId": order_id, "userId": state.user_id, "status": state.status}
        )
        return state

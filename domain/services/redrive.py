"""Re-drives orders that stopped moving: the safety net under at-least-once delivery.

A message can be lost between the append and the enqueue (the API dies in between),
or sit with a killed worker until the broker gives it back. Orders in an executing
status whose last event is older than `stuck_after` get the message for their next
step again. Steps are idempotent and the submit step re-sends under the order's swap
key, so a re-drive of an order that was merely slow costs a little work, never a
second swap. An order is re-driven at most once per version (`claims`): one waiting
for a rate-limit slot is not handed a new message every check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from domain.errors import QueueUnavailable
from domain.events import Step
from domain.ports import OrderFinder, RedriveClaims, StepQueue

log = logging.getLogger("orderengine.redriver")

STEP_FOR_STATUS: dict[str, Step] = {
    "pending": "route",
    "routing": "build",
    "building": "submit",
    "submitted": "confirm",
}


class StuckOrders:
    def __init__(
        self,
        finder: OrderFinder,
        queue: StepQueue,
        claims: RedriveClaims,
        stuck_after: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.finder = finder
        self.queue = queue
        self.claims = claims
        self.stuck_after = stuck_after
        self.clock = clock

    async def redrive(self) -> int:
        """Send each stuck order's next step; returns how many were re-driven."""
        redriven = 0
        for order_id, status, version, order_type in await self.finder.stuck(self.clock() - self.stuck_after):
            if not await self.claims.claim(order_id, version):
                continue  # already re-driven in this state
            step = STEP_FOR_STATUS[status]
            log.warning(
                "re-driving a stuck order", extra={"orderId": order_id, "status": status, "step": step}
            )
            try:
                await self.queue.send(step, order_id, priority=order_type == "sniper")
            except QueueUnavailable:
                await self.claims.release(order_id, version)  # the next check tries again
                raise
            redriven += 1
        return redriven

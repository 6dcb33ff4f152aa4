"""Re-drives orders that stopped moving: the safety net under at-least-once delivery.

A message can be lost between the append and the enqueue (the API dies in
between), or sit with a killed worker until Dramatiq's heartbeat expires. Every
`interval`, orders in an executing status whose last event is older than
`stuck_after` get the message for their next step again. Steps are idempotent
and the submit step re-sends under the order's swap key, so a re-drive of an
order that was merely slow costs a little work, never a second swap. An order
is re-driven at most once per version (`claim`): one waiting for a rate-limit
slot is not handed a new message every check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from domain.events import Step
from projections.order_views import stuck_orders

log = logging.getLogger("orderengine.redriver")

STEP_FOR_STATUS: dict[str, Step] = {
    "pending": "route",
    "routing": "build",
    "building": "submit",
    "submitted": "confirm",
}


class StuckOrderRedriver:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        send: Callable[[Step, str, bool], Awaitable[None]],
        claim: Callable[[str, int], Awaitable[bool]],
        stuck_after: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.send = send
        self.claim = claim
        self.stuck_after = stuck_after
        self.clock = clock

    async def redrive(self) -> int:
        """Send each stuck order's next step; returns how many were re-driven."""
        redriven = 0
        for order_id, status, version, order_type in await stuck_orders(
            self.pool, self.clock() - self.stuck_after
        ):
            if not await self.claim(order_id, version):
                continue  # already re-driven in this state
            step = STEP_FOR_STATUS[status]
            log.warning(
                "re-driving a stuck order", extra={"orderId": order_id, "status": status, "step": step}
            )
            await self.send(step, order_id, order_type == "sniper")
            redriven += 1
        return redriven

"""The scheduler's jobs over orders that wait: re-quote waiting orders, expire overdue
limit orders, and wake the sniper orders of a token that just launched.

Candidates come from a read model (`OrderFinder`), which may lag the log; orders are
changed only through the log (a `route` message, or `handle`), so a lagging read model
costs a wasted check, never a wrong transition: the fold decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from domain.commands import ExpireOrder
from domain.errors import DomainError
from domain.ports import EventStore, Launches, OrderFinder, StepQueue
from domain.services.handling import handle

log = logging.getLogger("orderengine.limit_jobs")


class WaitingOrders:
    def __init__(
        self,
        store: EventStore,
        finder: OrderFinder,
        queue: StepQueue,
        launches: Launches,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.finder = finder
        self.queue = queue
        self.launches = launches
        self.clock = clock

    async def requote_waiting(self) -> int:
        """Send a `route` message for every waiting order; returns how many."""
        waiting = await self.finder.waiting()
        for order_id, order_type in waiting:
            await self.queue.send("route", order_id, priority=order_type == "sniper")
        return len(waiting)

    async def wake_snipers(self, token: str) -> int:
        """Route, in the priority lane, every order waiting on `token` (just launched)."""
        waiting = await self.finder.waiting(token=token)
        for order_id, order_type in waiting:
            await self.queue.send("route", order_id, priority=order_type == "sniper")
        return len(waiting)

    async def expire_overdue(self) -> int:
        """Record `OrderExpired` for each overdue order still pending or waiting; returns how many."""
        now = self.clock()
        expired = 0
        for order_id in await self.finder.due_for_expiry(now):
            try:
                handled = await handle(
                    self.store,
                    order_id,
                    ExpireOrder(command_id=f"{order_id}:expire", now=now),
                    actor="scheduler:expire",
                    issued_at=now,
                )
                if not handled.appended:
                    continue  # expired by an earlier run; the read model has not caught up
                expired += 1
                log.info("order expired", extra={"orderId": order_id, "status": "expired"})
            except DomainError as exc:  # it started executing (or ended) since the read model saw it
                log.info("expiry skipped: %s", exc, extra={"orderId": order_id})
        return expired

    async def launch(self, token: str) -> tuple[bool, int]:
        """Open pools for `token` and route its waiting sniper orders at once.

        Returns (newly launched, orders woken). Waking is harmless when repeated: the
        route step does nothing for an order that is no longer waiting.
        """
        launched = await self.launches.launch(token)
        woken = await self.wake_snipers(token)
        log.info("token launched", extra={"token": token, "new": launched, "woken": woken})
        return launched, woken

    async def launch_due(self, schedule: Mapping[str, datetime]) -> int:
        """Launch every scheduled token whose time has come (MOCK_LAUNCHES)."""
        now = self.clock()
        done = 0
        for token, at in schedule.items():
            if at <= now and not await self.launches.is_launched(token):
                await self.launch(token)
                done += 1
        return done

"""Scheduler jobs for limit orders: re-quote the waiting ones, expire the overdue ones.

Both read the `orders` projection to find candidates and change orders only
through the log (`handle`, or a `route` message), so a projection that lags a
little costs a wasted check, never a wrong transition: the fold decides.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from domain.commands import ExpireOrder
from domain.errors import DomainError
from domain.handling import handle
from domain.ports import EventStore
from projections.order_views import due_for_expiry, waiting_order_ids

log = logging.getLogger("orderengine.limit_jobs")


class LimitOrderJobs:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        store: EventStore,
        send_route: Callable[[str], Awaitable[None]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.store = store
        self.send_route = send_route
        self.clock = clock

    async def requote_waiting(self) -> int:
        """Send a `route` message for every waiting order; returns how many."""
        ids = await waiting_order_ids(self.pool)
        for order_id in ids:
            await self.send_route(order_id)
        return len(ids)

    async def expire_overdue(self) -> int:
        """Record `OrderExpired` for each overdue order still pending or waiting; returns how many."""
        now = self.clock()
        expired = 0
        for order_id in await due_for_expiry(self.pool, now):
            try:
                await handle(
                    self.store,
                    order_id,
                    ExpireOrder(command_id=f"{order_id}:expire", now=now),
                    actor="scheduler:expire",
                    issued_at=now,
                )
                expired += 1
                log.info("order expired", extra={"orderId": order_id, "status": "expired"})
            except DomainError as exc:  # it started executing (or ended) since the projection saw it
                log.info("expiry skipped: %s", exc, extra={"orderId": order_id})
        return expired

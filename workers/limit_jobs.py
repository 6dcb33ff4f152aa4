"""Scheduler jobs for waiting orders: re-quote them, expire the overdue limit orders,
and wake the sniper orders of a token that just launched.

Both read the `orders` projection to find candidates and change orders only
through the log (`handle`, or a `route` message), so a projection that lags a
little costs a wasted check, never a wrong transition: the fold decides.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.market import RedisMarket
from domain.commands import ExpireOrder
from domain.errors import DomainError
from domain.handling import handle
from domain.ports import EventStore
from projections.order_views import due_for_expiry, waiting_orders

log = logging.getLogger("orderengine.limit_jobs")


class LimitOrderJobs:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        store: EventStore,
        send_route: Callable[[str, bool], Awaitable[None]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.store = store
        self.send_route = send_route
        self.clock = clock

    async def requote_waiting(self) -> int:
        """Send a `route` message for every waiting order; returns how many."""
        waiting = await waiting_orders(self.pool)
        for order_id, order_type in waiting:
            await self.send_route(order_id, order_type == "sniper")
        return len(waiting)

    async def wake_snipers(self, token: str) -> int:
        """Route, in the priority lane, every order waiting on `token` (just launched)."""
        waiting = await waiting_orders(self.pool, token=token)
        for order_id, order_type in waiting:
            await self.send_route(order_id, order_type == "sniper")
        return len(waiting)

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


async def launch_token(market: RedisMarket, jobs: LimitOrderJobs, token: str) -> tuple[bool, int]:
    """Open pools for `token` and route its waiting sniper orders at once.

    Returns (newly launched, orders woken). Waking is harmless when repeated: the
    route step does nothing for an order that is no longer waiting.
    """
    launched = await anyio.to_thread.run_sync(market.launch, token)
    woken = await jobs.wake_snipers(token)
    log.info("token launched", extra={"token": token, "new": launched, "woken": woken})
    return launched, woken


async def launch_due_tokens(market: RedisMarket, jobs: LimitOrderJobs, schedule: dict[str, datetime]) -> int:
    """Launch every scheduled token whose time has come (MOCK_LAUNCHES)."""
    now = jobs.clock()
    done = 0
    for token, at in schedule.items():
        if at <= now and not await anyio.to_thread.run_sync(market.is_launched, token):
            await launch_token(market, jobs, token)
            done += 1
    return done

"""Logs of simulated orders for the projection tests, and the followers that project them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from projections import orders_projection, stats_projection
from projections.log_follower import LogFollower
from tests.benchmarks.simulated_log import Recorded, simulate_order

Pool = AsyncConnectionPool[AsyncConnection[Any]]
HANDLERS = {
    orders_projection.NAME: orders_projection.apply_batch,
    stats_projection.NAME: stats_projection.apply_batch,
}


def mixed_orders(count: int, seed: int, start: datetime | None = None) -> list[Recorded]:
    """`count` orders of every lifecycle (the benchmark's mix), one every 20 ms, their events in
    time order up to 3 s after the last was placed: some have ended, some are still open."""
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 24, tzinfo=UTC)
    events = [
        e for i in range(count) for e in simulate_order(rng, start + timedelta(milliseconds=20 * i), users=8)
    ]
    cut = start + timedelta(milliseconds=20 * count + 3000)
    return sorted((e for e in events if e.at < cut), key=lambda r: r.at)


VERSIONS = {p.NAME: p.VERSION for p in (orders_projection, stats_projection)}


def follower(pool: Pool, name: str, batch_size: int = 37) -> LogFollower:
    """The projection's follower as the scheduler runs it (its code's version included)."""
    return LogFollower(pool, name, HANDLERS[name], batch_size=batch_size, version=VERSIONS[name])


async def follow_all(pool: Pool, batch_size: int = 37) -> None:
    for name in HANDLERS:
        following = follower(pool, name, batch_size)
        while await following.step():
            pass

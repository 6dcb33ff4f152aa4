"""Run a task in one process per deployment, with standbys that take over.

The holder keeps a Postgres session-level advisory lock on a connection of its
own; a standby polls `pg_try_advisory_lock` and starts the task when the holder
is gone (its process died, so its session ended and Postgres released the lock).
The holder checks its lock connection between waits and stops the task at once
if that connection is lost, since another process may then take over. Between
the loss and the next check (at most `check_interval`) two holders can overlap;
the followers tolerate that: each batch runs under a row lock on its checkpoint
and the relay's XADDs are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection

Connect = Callable[[], Awaitable[AsyncConnection[Any]]]

log = logging.getLogger("orderengine.singleton")

RELAY_LOCK_KEY = 0x6F65_726C  # "oerl": the outbox relay and projections


async def run_exclusively(
    connect: Connect,
    key: int,
    task_factory: Callable[[], Awaitable[None]],
    *,
    name: str,
    check_interval: float = 2.0,
    on_acquired: Callable[[], None] | None = None,
) -> None:
    """Forever: wait for the lock `key`, then run `task_factory()` while holding it."""
    while True:
        try:
            async with await connect() as conn:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                row = await cur.fetchone()
                if not (row and row[0]):
                    await asyncio.sleep(check_interval)
                    continue
                log.info("%s: took the lock; running here", name)
                if on_acquired is not None:
                    on_acquired()
                await _hold(conn, task_factory, check_interval)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s: lost the lock connection; standing by", name, exc_info=True)
            await asyncio.sleep(check_interval)


async def _hold(
    conn: AsyncConnection[Any], task_factory: Callable[[], Awaitable[None]], check_interval: float
) -> None:
    task = asyncio.ensure_future(task_factory())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=check_interval)
            if not task.done():
                await conn.execute("SELECT 1")  # raises if the session (and so the lock) is gone
        task.result()  # surface a crash of the task itself
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

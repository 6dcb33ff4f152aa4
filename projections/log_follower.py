"""Follows the event log by position and hands each new batch to a handler.

The handler runs inside the same transaction that advances the follower's
checkpoint, so a Postgres-side effect is applied exactly once; an effect
outside Postgres (XADD to Redis) must be idempotent, because a crash after it
and before the commit replays the batch.

Followers sleep until `LISTEN events` wakes them, and also poll every
`poll_interval` seconds, so a lost notification costs latency, never an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import read_all
from domain.ports import RecordedEvent

log = logging.getLogger(__name__)

Handler = Callable[[AsyncConnection[Any], list[RecordedEvent]], Awaitable[None]]


async def read_checkpoint(conn: AsyncConnection[Any], name: str) -> int:
    cur = await conn.execute("SELECT position FROM projection_checkpoints WHERE name = %s", (name,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def write_checkpoint(
    conn: AsyncConnection[Any], name: str, position: int, version: int | None = None
) -> None:
    """Move the checkpoint; with `version` (a rebuild's swap), also record which version of
    the projection's code built the tables."""
    if version is None:
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, position) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
            (name, position),
        )
    else:
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, position, version) VALUES (%s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, version = EXCLUDED.version,"
            " updated_at = now()",
            (name, position, version),
        )


class LogFollower:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        name: str,
        handler: Handler,
        *,
        version: int | None,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self.pool = pool
        self.name = name
        # The version of the read model's code (projections/registry.py), recorded when this
        # follower starts the projection from nothing, since it then builds every row; None
        # for a follower that builds no read model (the relay). Required, so a follower of
        # a read model cannot record the wrong one by leaving it out.
        self.version = version
        self.handler = handler
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.wakeup = asyncio.Event()

    async def step(self) -> int:
        """Process one batch; returns how many events it handled."""
        async with self.pool.connection() as conn:
            async with conn.transaction():
                # Row lock on the checkpoint: two followers of one name never interleave.
                await conn.execute(
                    "INSERT INTO projection_checkpoints (name, position, version)"
                    " VALUES (%s, 0, coalesce(%s, 1)) ON CONFLICT (name) DO NOTHING",
                    (self.name, self.version),
                )
                cur = await conn.execute(
                    "SELECT position FROM projection_checkpoints WHERE name = %s FOR UPDATE",
                    (self.name,),
                )
                row = await cur.fetchone()
                after = int(row[0]) if row else 0
                events = await read_all(conn, after, self.batch_size)
                if not events:
                    return 0
                await self.handler(conn, events)
                await write_checkpoint(conn, self.name, events[-1].position)
                return len(events)

    async def run(self) -> None:
        while True:
            # Cleared before reading, not after: a NOTIFY that lands while a batch is
            # being handled must wake the next round, or its event waits for the poll.
            self.wakeup.clear()
            try:
                handled = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log follower %s failed; retrying", self.name)
                await asyncio.sleep(self.poll_interval)
                continue
            if handled >= self.batch_size:
                continue
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass


async def listen_for_events(
    connect: Callable[[], Awaitable[AsyncConnection[Any]]], followers: list[LogFollower]
) -> None:
    """Wake every follower on `NOTIFY events`; reconnects if the connection drops."""
    while True:
        try:
            async with await connect() as conn:
                await conn.execute("LISTEN events")
                for f in followers:  # catch up on anything committed while not listening
                    f.wakeup.set()
                async for _ in conn.notifies():
                    for f in followers:
                        f.wakeup.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("event listener lost its connection; reconnecting", exc_info=True)
            await asyncio.sleep(1.0)

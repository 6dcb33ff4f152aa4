"""Follows the event log by position and hands each new batch to a handler.

The handler runs inside the same transaction that advances the follower's checkpoint,
so a Postgres-side effect is applied exactly once; an effect outside Postgres (XADD to
Redis) must be idempotent, because a crash after it and before the commit replays the
batch.

A busy follower reads batch after batch; with nothing new it keeps looking for a few
milliseconds (`linger_s`), then sleeps until `LISTEN events` wakes it, and also polls
every `poll_interval` seconds, so a lost notification costs latency, never an event.
Writers notify only while a follower is asleep (migration 0011): before sleeping, a
follower marks itself waiting in `log_listeners` and looks at the log once more under a
SHARE lock, which waits for the appends in flight, so an append either is seen by that
look or finds the mark and notifies.

Followers of one process share a `LogCache`: what one reads and decodes from the log,
the others take from memory when they reach it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import read_all
from domain.ports import RecordedEvent

log = logging.getLogger(__name__)

Handler = Callable[[AsyncConnection[Any], list[RecordedEvent]], Awaitable[None]]

LINGER_S = 0.02  # keep looking this long after the log went quiet, before sleeping
LINGER_STEP_S = 0.002


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


async def last_position(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


class LogCache:
    """The most recent run of the log that a follower of this process read, decoded.

    It holds a contiguous range of positions read by `read_all` (which never skips an
    event), so a follower whose checkpoint falls inside it can take what follows from
    memory: three followers read and decode each event once.
    """

    def __init__(self, max_events: int = 20_000) -> None:
        self._events: deque[RecordedEvent] = deque()
        self._after = 0  # the range is (after, last position]
        self._max = max_events

    def _last(self) -> int:
        return self._events[-1].position if self._events else self._after

    async def read(self, conn: AsyncConnection[Any], after: int, limit: int) -> list[RecordedEvent]:
        if self._events and self._after <= after < self._last():
            found = [e for e in self._events if e.position > after]
            return found[:limit]
        events = await read_all(conn, after, limit)
        if events:
            if after != self._last():
                self._events.clear()
                self._after = after
            self._events.extend(events)
            while len(self._events) > self._max:
                self._after = self._events.popleft().position
        return events


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
        cache: LogCache | None = None,
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
        self.cache = cache or LogCache()
        self.wakeup = asyncio.Event()
        self.position = 0  # the checkpoint as of the last batch (a hint between batches)
        self._started = False

    async def step(self) -> int:
        """Process one batch; returns how many events it handled."""
        async with self.pool.connection() as conn:
            async with conn.transaction():
                if not self._started:
                    await conn.execute(
                        "INSERT INTO projection_checkpoints (name, position, version)"
                        " VALUES (%s, 0, coalesce(%s, 1)) ON CONFLICT (name) DO NOTHING",
                        (self.name, self.version),
                    )
                    self._started = True
                # Row lock on the checkpoint: two followers of one name never interleave.
                cur = await conn.execute(
                    "SELECT position FROM projection_checkpoints WHERE name = %s FOR UPDATE",
                    (self.name,),
                )
                row = await cur.fetchone()
                after = int(row[0]) if row else 0
                self.position = after
                events = await self.cache.read(conn, after, self.batch_size)
                if not events:
                    return 0
                await self.handler(conn, events)
                await write_checkpoint(conn, self.name, events[-1].position)
        self.position = events[-1].position
        return len(events)

    async def run(self) -> None:
        await self._mark_waiting(False)
        while True:
            # Cleared before reading, not after: a NOTIFY that lands while a batch is
            # being handled must wake the next round, or its event waits for the poll.
            self.wakeup.clear()
            try:
                handled = await self.step()
                if handled or await self._linger():
                    continue
                await self._sleep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log follower %s failed; retrying", self.name)
                await asyncio.sleep(self.poll_interval)

    async def _has_news(self) -> bool:
        async with self.pool.connection() as conn:
            return await last_position(conn) > self.position

    async def _linger(self) -> bool:
        """Look again for a moment: at a steady rate the next event is close, and finding it
        this way costs neither side a notification."""
        waited = 0.0
        while waited < LINGER_S:
            await asyncio.sleep(LINGER_STEP_S)
            waited += LINGER_STEP_S
            if self.wakeup.is_set() or await self._has_news():
                return True
        return False

    async def _sleep(self) -> None:
        await self._mark_waiting(True)
        try:
            async with self.pool.connection() as conn:
                async with conn.transaction():
                    # Waits for the appends in flight: each is either seen now, or read the mark.
                    await conn.execute("LOCK TABLE events IN SHARE MODE")
                    head = await last_position(conn)
            while head <= self.position:
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout=self.poll_interval)
                    return
                except TimeoutError:
                    # Still marked waiting: an idle follower costs one cheap look a poll.
                    async with self.pool.connection() as conn:
                        head = await last_position(conn)
        finally:
            await self._mark_waiting(False)

    async def _mark_waiting(self, waiting: bool) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO log_listeners (name, waiting) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET waiting = EXCLUDED.waiting",
                (self.name, waiting),
            )


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

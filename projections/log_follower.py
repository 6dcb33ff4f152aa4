"""Follows the event log by position and hands each new batch to a handler.

The handler runs inside the same transaction that advances the follower's checkpoint,
so a Postgres-side effect is applied exactly once; an effect outside Postgres (XADD to
Redis) must be idempotent, because a crash after it and before the commit replays the
batch.

The followers of a process share two things. A `LogCache`: what one reads and decodes
from the log, the others take from memory when they reach it. And a `LogWatcher`: one
task that knows the log's head, so a caught-up follower waits on it instead of polling.
While a follower waits, the watcher looks at the head every `poll_s` (5 ms); once every
follower has waited `linger_s` for nothing, it sleeps until `LISTEN events` wakes it,
looking every `idle_poll_s` anyway, so a lost notification costs latency, never an event.
Writers notify only while the watcher sleeps (migration 0011): before sleeping it marks
itself waiting in `log_listeners` and looks at the log once more under a SHARE lock,
which waits for the appends in flight, so an append either is seen by that look or finds
the mark and notifies.

A follower whose batch came back short waits `min_interval_s` before it looks again, so
that under load its batches grow instead of its round trips (the projections; the relay,
which feeds the WebSocket clients, waits for nothing).
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
Pool = AsyncConnectionPool[AsyncConnection[Any]]
Connect = Callable[[], Awaitable[AsyncConnection[Any]]]


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


class LogWatcher:
    """The log's head as one task of a process sees it; see the module docstring."""

    def __init__(
        self,
        pool: Pool,
        *,
        name: str = "followers",
        poll_s: float = 0.005,
        linger_s: float = 0.05,
        idle_poll_s: float = 1.0,
        listens: bool = False,
    ) -> None:
        self.pool = pool
        self.name = name  # its row in log_listeners
        self.poll_s = poll_s
        self.linger_s = linger_s
        self.idle_poll_s = idle_poll_s
        self.head = 0
        self._moved = asyncio.Condition()
        self._wakeup = asyncio.Event()  # NOTIFY events arrived (set by `listen`)
        self._someone_waits = asyncio.Event()
        self._waiting = 0
        # Only a watcher whose `listen` runs may sleep until notified; one that does not only polls.
        self._listening = listens

    async def wait_beyond(self, position: int) -> None:
        """Return once the log's head is above `position`."""
        if self.head > position:
            return
        async with self._moved:
            self._waiting += 1
            self._someone_waits.set()
            try:
                await self._moved.wait_for(lambda: self.head > position)
            finally:
                self._waiting -= 1
                if not self._waiting:
                    self._someone_waits.clear()

    def notified(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        if self._listening:
            await self._mark_waiting(False)
        quiet = 0.0
        while True:
            try:
                if not self._waiting:  # every follower is busy: nothing to look for
                    await self._someone_waits.wait()
                    quiet = 0.0
                head = await self._read_head()
                if head > self.head:
                    await self._moved_to(head)
                    quiet = 0.0
                    continue
                if self._listening and quiet >= self.linger_s:
                    await self._sleep()
                    quiet = 0.0
                    continue
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_s)
                except TimeoutError:
                    quiet += self.poll_s
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("log watcher cannot read the log's head; retrying", exc_info=True)
                await asyncio.sleep(self.idle_poll_s)

    async def _read_head(self) -> int:
        async with self.pool.connection() as conn:
            return await last_position(conn)

    async def _moved_to(self, head: int) -> None:
        async with self._moved:
            self.head = head
            self._moved.notify_all()

    async def _sleep(self) -> None:
        """Nothing happened for a while: mark waiting, look once more, sleep until woken."""
        self._wakeup.clear()
        await self._mark_waiting(True)
        try:
            async with self.pool.connection() as conn:
                async with conn.transaction():
                    # Waits for the appends in flight: each is either seen now, or read the mark.
                    await conn.execute("LOCK TABLE events IN SHARE MODE")
                    head = await last_position(conn)
            while head <= self.head:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self.idle_poll_s)
                    break
                except TimeoutError:
                    head = await self._read_head()  # still marked: one cheap look a poll
        finally:
            await self._mark_waiting(False)

    async def _mark_waiting(self, waiting: bool) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO log_listeners (name, waiting) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET waiting = EXCLUDED.waiting",
                (self.name, waiting),
            )

    async def listen(self, connect: Connect) -> None:
        """Pass `NOTIFY events` on to the watcher (built with `listens=True`); reconnects if
        the connection drops."""
        while True:
            try:
                async with await connect() as conn:
                    await conn.execute("LISTEN events")
                    self.notified()  # catch up on anything committed while not listening
                    async for _ in conn.notifies():
                        self.notified()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event listener lost its connection; reconnecting", exc_info=True)
                await asyncio.sleep(1.0)


class LogFollower:
    def __init__(
        self,
        pool: Pool,
        name: str,
        handler: Handler,
        *,
        version: int | None,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        min_interval_s: float = 0.0,
        cache: LogCache | None = None,
        watcher: LogWatcher | None = None,
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
        self.poll_interval = poll_interval  # after a failed batch; and, alone, between looks
        self.min_interval_s = min_interval_s
        self.cache = cache or LogCache()
        # Alone (tests, tools), a follower watches the log itself at its poll interval.
        self._own_watcher = watcher is None
        self.watcher = watcher or LogWatcher(pool, name=name, poll_s=poll_interval)
        self.position = 0  # the checkpoint as of the last batch
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
        own = asyncio.ensure_future(self.watcher.run()) if self._own_watcher else None
        try:
            while True:
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
                if handled and self.min_interval_s:
                    await asyncio.sleep(self.min_interval_s)  # let the next batch gather
                await self.watcher.wait_beyond(self.position)
        finally:
            if own is not None:
                own.cancel()
                await asyncio.gather(own, return_exceptions=True)

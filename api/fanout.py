"""One Redis reader per API process, fanned out to every WebSocket in memory.

The hub tails the all-orders stream (`{prefix}:orders`, entry id = log position)
with one blocking XREAD at a time and hands each entry to the subscriptions of
its order, of its user and of every order (an operator's `/ws?all=true`). Ten
thousand sockets cost one Redis connection, not ten thousand.

A subscription is a bounded buffer plus a wake-up flag. A subscriber that falls
more than `max_pending` entries behind is marked `overflowed` instead of
growing without bound; it then re-reads what it missed from Postgres, as it
does for any gap. The hub never waits for a slow socket.

Subscribe before reading history: anything published after subscribing is
buffered, anything before it was committed earlier and is in the history, and
the subscriber de-duplicates the overlap (by version or position).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout
from api.live_entry import LiveEntry

log = logging.getLogger("orderengine.fanout")

Entry = LiveEntry


class Subscription:
    def __init__(self, max_pending: int) -> None:
        self._entries: deque[Entry] = deque()
        self._wakeup = asyncio.Event()
        self._max_pending = max_pending
        self.overflowed = False

    def offer(self, entry: Entry) -> None:
        if len(self._entries) >= self._max_pending:
            self.overflowed = True
        else:
            self._entries.append(entry)
        self._wakeup.set()

    def mark_overflowed(self) -> None:
        self.overflowed = True
        self._wakeup.set()

    async def next_batch(self) -> list[Entry]:
        """Wait for entries (or an overflow) and take everything buffered, oldest first."""
        await self._wakeup.wait()
        self._wakeup.clear()
        batch = list(self._entries)
        self._entries.clear()
        return batch

    def take_overflow(self) -> bool:
        """True once after entries were dropped: the caller must re-read from Postgres."""
        overflowed, self.overflowed = self.overflowed, False
        return overflowed


class StreamHub:
    def __init__(
        self,
        client: aioredis.Redis,
        layout: RedisLayout,
        *,
        block_ms: int = 2_000,
        batch: int = 500,
        max_pending: int = 1_000,
    ) -> None:
        self._client = client
        self._key = layout.all_orders
        self._block_ms = block_ms
        self._batch = batch
        self._max_pending = max_pending
        self._by_order: dict[str, set[Subscription]] = defaultdict(set)
        self._by_user: dict[str, set[Subscription]] = defaultdict(set)
        self._everything: set[Subscription] = set()
        self._last_id: str | None = None
        self.entries_read = 0

    @property
    def subscribers(self) -> int:
        by_key = sum(map(len, self._by_order.values())) + sum(map(len, self._by_user.values()))
        return by_key + len(self._everything)

    @contextmanager
    def order(self, order_id: str) -> Iterator[Subscription]:
        with self._subscribed(self._by_order, order_id) as sub:
            yield sub

    @contextmanager
    def user(self, user_id: str) -> Iterator[Subscription]:
        with self._subscribed(self._by_user, user_id) as sub:
            yield sub

    @contextmanager
    def everything(self) -> Iterator[Subscription]:
        """Every order's entries (what an operator follows)."""
        sub = Subscription(self._max_pending)
        self._everything.add(sub)
        try:
            yield sub
        finally:
            self._everything.discard(sub)

    @contextmanager
    def _subscribed(self, index: dict[str, set[Subscription]], key: str) -> Iterator[Subscription]:
        sub = Subscription(self._max_pending)
        index[key].add(sub)
        try:
            yield sub
        finally:
            subs = index.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del index[key]

    async def start_position(self) -> None:
        """Read from the stream's current end: entries before it are history, read from Postgres."""
        newest = await self._client.xrevrange(self._key, count=1)
        self._last_id = newest[0][0] if newest else "0-0"

    async def run(self) -> None:
        """Tail the stream until cancelled; a Redis outage pauses delivery and loses nothing."""
        delay = 0.1
        failed = False
        while True:
            try:
                if self._last_id is None:
                    await self.start_position()
                assert self._last_id is not None
                reply = await self._client.xread(
                    {self._key: self._last_id}, block=self._block_ms, count=self._batch
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream hub cannot read Redis (%s); retrying in %.1f s", exc, delay)
                failed = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if failed:
                # Whatever happened while the hub was blind, every subscriber re-reads
                # from Postgres once: a stream that went quiet must not wait forever.
                failed, delay = False, 0.1
                self._resync_all()
            for entry_id, fields in reply[0][1] if reply else []:
                self._last_id = entry_id
                self.entries_read += 1
                self._dispatch(LiveEntry(fields))

    def _resync_all(self) -> None:
        for index in (self._by_order, self._by_user):
            for subs in index.values():
                for sub in subs:
                    sub.mark_overflowed()
        for sub in self._everything:
            sub.mark_overflowed()

    def _dispatch(self, entry: Entry) -> None:
        # One LiveEntry for all its subscribers: decoded and encoded at most once.
        for sub in self._by_order.get(entry.order_id, ()):
            sub.offer(entry)
        user = entry.user_id
        if user:
            for sub in self._by_user.get(user, ()):
                sub.offer(entry)
        for sub in self._everything:
            sub.offer(entry)

"""The event log in memory: `domain.ports.EventStore` for unit tests of the services.

It keeps one list in position order (the global log) and, per stream, the records in
version order, so positions run 1, 2, 3… and each stream's versions run 1, 2, 3…
It passes the same contract suite as the Postgres store
(tests/integration/test_event_store_contract.py).

Every method yields to the event loop once before it touches the log, so tasks that
race (two handlers reading, then appending) interleave as they would on a server;
after that yield a method runs to its end without awaiting, so an append checks the
version and writes all its events atomically with respect to other tasks on the loop.
Not thread-safe: one event loop only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from domain.errors import ConcurrencyConflict
from domain.events import Event, event_type
from domain.ports import EventMetadata, RecordedEvent

Clock = Callable[[], datetime]


def rising_utc_clock() -> Clock:
    """The time now in UTC, nudged a microsecond past the last reading when the wall
    clock has not moved on (or went back), so order by time is order by position."""
    last = datetime.min.replace(tzinfo=UTC)

    def now() -> datetime:
        nonlocal last
        last = max(datetime.now(UTC), last + timedelta(microseconds=1))
        return last

    return now


class InMemoryEventStore:
    """Streams and the global log in two Python structures; see the module docstring."""

    def __init__(self, clock: Clock | None = None) -> None:
        """`clock` gives each event's `recorded_at` (timezone-aware; used as given);
        by default the rising UTC clock above."""
        self._clock = clock or rising_utc_clock()
        self._log: list[RecordedEvent] = []  # index i holds position i + 1
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._owners: dict[str, str] = {}  # stream -> the user_id its first event names

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: EventMetadata,
    ) -> list[RecordedEvent]:
        await asyncio.sleep(0)
        if not events:
            return []
        # From here on no await: the check and the write are one step for other tasks.
        stream = self._streams.get(stream_id, [])
        if len(stream) != expected_version:
            raise ConcurrencyConflict(stream_id, expected_version)
        start = len(self._log)
        recorded = [
            RecordedEvent(
                position=start + i,
                stream_id=stream_id,
                version=expected_version + i,
                type=event_type(event),
                event=event,
                metadata=metadata,
                recorded_at=self._clock(),
            )
            for i, event in enumerate(events, start=1)
        ]
        if not stream:
            owner = getattr(events[0], "user_id", None)
            if isinstance(owner, str):
                self._owners[stream_id] = owner
        self._streams.setdefault(stream_id, []).extend(recorded)
        self._log.extend(recorded)
        return list(recorded)

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        await asyncio.sleep(0)
        return self._streams.get(stream_id, [])[max(after_version, 0) :]

    async def read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        await asyncio.sleep(0)
        start = max(after, 0)
        return self._log[start : start + max(limit, 0)]

    async def read_user_events(self, user_id: str, after: int, limit: int) -> list[RecordedEvent]:
        await asyncio.sleep(0)
        found: list[RecordedEvent] = []
        for record in self._log[max(after, 0) :]:
            if len(found) >= limit:
                break
            if self._owners.get(record.stream_id) == user_id:
                found.append(record)
        return found

    async def last_position(self) -> int:
        await asyncio.sleep(0)
        return len(self._log)

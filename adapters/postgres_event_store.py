"""The event log in Postgres (`events` table, see db/migrations/0001_event_log.sql).

Appends go through `append_events()` (migration 0011): one statement, sent in autocommit,
that takes the table's EXCLUSIVE lock (so global positions become visible in order) and
inserts only the rows whose stream is still at the version the writer expects. The lock
is held while the server inserts and commits, never across the client's round trips.

Each store batches its appends: while a call is on its way to Postgres, the appends that
arrive meanwhile queue up and go together in the next call (at most `max_batch` of them,
never two of one stream), so under load one lock, one statement and one commit (one WAL
flush) carry many appends, and an append alone goes out at once. A writer whose stream
has moved on gets `ConcurrencyConflict`; the others in its call are unaffected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import msgspec
from psycopg import AsyncConnection
from psycopg_pool import PoolTimeout

from adapters.database import is_connection_failure
from domain.errors import ConcurrencyConflict
from domain.events import Event, decode_event, encode_event, event_type
from domain.ports import EventMetadata, RecordedEvent

T = TypeVar("T")

log = logging.getLogger("orderengine.event_store")

ConnectionSource = Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]

_APPEND = "SELECT stream_id, version, position, recorded_at FROM append_events(%s::jsonb)"

EVENT_COLUMNS = "position, stream_id, version, type, data::text, metadata::text, recorded_at"

_metadata_decoder = msgspec.json.Decoder(EventMetadata)
_encoder = msgspec.json.Encoder()


def row_to_recorded(row: tuple[Any, ...]) -> RecordedEvent:
    position, stream_id, version, type_, data, metadata, recorded_at = row
    return RecordedEvent(
        position=position,
        stream_id=stream_id,
        version=version,
        type=type_,
        event=decode_event(data),
        metadata=_metadata_decoder.decode(metadata),
        recorded_at=recorded_at,
    )


class _Row(msgspec.Struct, gc=False):
    """One event of an append as `append_events()` reads it: data and metadata are embedded
    as the JSON they are already encoded to."""

    s: str  # stream
    x: int  # the version the stream must be at
    t: str  # type
    d: msgspec.Raw  # data
    m: msgspec.Raw  # metadata


class _Append:
    __slots__ = ("events", "expected", "future", "metadata", "stream_id")

    def __init__(
        self,
        stream_id: str,
        expected: int,
        events: Sequence[Event],
        metadata: EventMetadata,
        future: asyncio.Future[list[RecordedEvent]],
    ) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.events = events
        self.metadata = metadata
        self.future = future


class PostgresEventStore:
    def __init__(self, connection: ConnectionSource, *, max_batch: int = 256, max_calls: int = 2) -> None:
        self._connection = connection
        self._max_batch = max_batch
        # Calls on their way at once: the next batch is sent while the last one commits.
        self._max_calls = max_calls
        self._queued: list[_Append] = []
        self._calls = 0

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: EventMetadata,
    ) -> list[RecordedEvent]:
        if not events:
            return []
        future: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        self._queued.append(_Append(stream_id, expected_version, events, metadata, future))
        if self._calls < self._max_calls:
            self._calls += 1
            asyncio.get_running_loop().create_task(self._send_queued())
        return await future

    async def _send_queued(self) -> None:
        try:
            while self._queued:
                batch = self._take_batch()
                try:
                    await self._send(batch)
                except BaseException as exc:
                    for request in batch:
                        if not request.future.done():
                            request.future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._calls -= 1

    def _take_batch(self) -> list[_Append]:
        """Up to `max_batch` queued appends, at most one per stream (in queue order)."""
        batch: list[_Append] = []
        streams: set[str] = set()
        rest: list[_Append] = []
        for request in self._queued:
            if len(batch) < self._max_batch and request.stream_id not in streams:
                streams.add(request.stream_id)
                batch.append(request)
            else:
                rest.append(request)
        self._queued = rest
        return batch

    async def _send(self, batch: list[_Append]) -> None:
        rows: list[_Row] = []
        for request in batch:
            meta = msgspec.Raw(_encoder.encode(request.metadata))
            for event in request.events:
                rows.append(
                    _Row(
                        request.stream_id,
                        request.expected,
                        event_type(event),
                        msgspec.Raw(encode_event(event)),
                        meta,
                    )
                )
        payload = (_encoder.encode(rows).decode(),)

        async def append(conn: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(_APPEND, payload)
            return await cur.fetchall()

        # Retried once on a connection Postgres closed: should the first call have committed
        # after all, the second finds the streams moved on and reports a conflict, which the
        # writer resolves by re-reading (it recognises its own command there).
        rows_back = await self._on_connection(append)
        stored: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows_back:
            stored.setdefault(row[0], []).append(row)
        for request in batch:
            mine = stored.get(request.stream_id, [])
            if len(mine) != len(request.events):
                if mine:  # cannot happen under the table lock; would mean a writer bypassing it
                    log.error(
                        "a partial append to %s: %d of %d events",
                        request.stream_id,
                        len(mine),
                        len(request.events),
                    )
                if not request.future.done():  # done: its writer was cancelled meanwhile
                    request.future.set_exception(ConcurrencyConflict(request.stream_id, request.expected))
                continue
            mine.sort(key=lambda r: r[1])
            if request.future.done():
                continue
            request.future.set_result(
                [
                    RecordedEvent(
                        position=position,
                        stream_id=request.stream_id,
                        version=version,
                        type=event_type(event),
                        event=event,
                        metadata=request.metadata,
                        recorded_at=recorded_at,
                    )
                    for (_, version, position, recorded_at), event in zip(mine, request.events, strict=True)
                ]
            )

    async def _on_connection(self, work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
        """`work` on a pooled connection, once more on another if Postgres closed the first
        (a restart kills every connection; the pool replaces them, this call need not fail)."""
        try:
            async with self._connection() as conn:
                return await work(conn)
        except Exception as exc:
            if isinstance(exc, PoolTimeout) or not is_connection_failure(exc):
                raise
            log.info("Postgres closed the connection (%s); once more on another", exc)
        async with self._connection() as conn:
            return await work(conn)

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        async def read(conn: AsyncConnection[Any]) -> list[RecordedEvent]:
            cur = await conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = %s AND version > %s ORDER BY version",
                (stream_id, after_version),
            )
            return [row_to_recorded(r) for r in await cur.fetchall()]

        return await self._on_connection(read)

    async def last_position(self) -> int:
        async def read(conn: AsyncConnection[Any]) -> int:
            cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._on_connection(read)

    async def read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        """Events with position > `after`, in position order."""
        return await self._on_connection(lambda conn: read_all(conn, after, limit))

    async def read_user_events(self, user_id: str, after: int, limit: int) -> list[RecordedEvent]:
        """Events of every order `user_id` placed, with position > `after`, in position order."""

        async def read(conn: AsyncConnection[Any]) -> list[RecordedEvent]:
            cur = await conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE position > %s AND stream_id IN "
                "(SELECT stream_id FROM events WHERE version = 1 AND data->>'user_id' = %s) "
                "ORDER BY position LIMIT %s",
                (after, user_id, limit),
            )
            return [row_to_recorded(r) for r in await cur.fetchall()]

        return await self._on_connection(read)

    async def users_of(self, stream_ids: list[str]) -> dict[str, str]:
        """The user who placed each of these orders (streams that are not orders are left out)."""
        return await self._on_connection(lambda conn: users_of(conn, stream_ids))

    async def stream_exists(self, stream_id: str) -> bool:
        async def read(conn: AsyncConnection[Any]) -> bool:
            cur = await conn.execute("SELECT 1 FROM events WHERE stream_id = %s LIMIT 1", (stream_id,))
            return await cur.fetchone() is not None

        return await self._on_connection(read)


async def read_all(conn: AsyncConnection[Any], after: int, limit: int) -> list[RecordedEvent]:
    cur = await conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s",
        (after, limit),
    )
    return [row_to_recorded(r) for r in await cur.fetchall()]


async def users_of(conn: AsyncConnection[Any], stream_ids: list[str]) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT stream_id, data->>'user_id' FROM events "
        "WHERE version = 1 AND stream_id = ANY(%s) AND data ? 'user_id'",
        (stream_ids,),
    )
    return {stream_id: user for stream_id, user in await cur.fetchall()}


async def iterate_all(conn: AsyncConnection[Any], batch: int = 1000) -> AsyncIterator[RecordedEvent]:
    after = 0
    while True:
        events = await read_all(conn, after, batch)
        if not events:
            return
        for e in events:
            yield e
        after = events[-1].position

"""The event log in Postgres (`events` table, see db/migrations/0001_event_log.sql).

An append is one short transaction: take the table's EXCLUSIVE lock (so global
positions become visible in order), then one INSERT … SELECT that only inserts
if the stream is still at the expected version. Zero rows, or a unique-key
violation, means another writer got there first: `ConcurrencyConflict`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec
import psycopg
from psycopg import AsyncConnection

from domain.errors import ConcurrencyConflict
from domain.events import Event, decode_event, encode_event, event_type
from domain.ports import EventMetadata, RecordedEvent

ConnectionSource = Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]

_APPEND = """
INSERT INTO events (stream_id, version, type, data, metadata)
SELECT %(stream)s, %(expected)s + e.n, e.t, e.d::jsonb, %(meta)s::jsonb
FROM unnest(%(types)s::text[], %(datas)s::text[]) WITH ORDINALITY AS e(t, d, n)
WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = %(stream)s) = %(expected)s
RETURNING position, version, recorded_at
"""

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


class PostgresEventStore:
    def __init__(self, connection: ConnectionSource) -> None:
        self._connection = connection

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: EventMetadata,
    ) -> list[RecordedEvent]:
        if not events:
            return []
        params = {
            "stream": stream_id,
            "expected": expected_version,
            "types": [event_type(e) for e in events],
            "datas": [encode_event(e).decode() for e in events],
            "meta": _encoder.encode(metadata).decode(),
        }
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
                    cur = await conn.execute(_APPEND, params)
                    rows = await cur.fetchall()
            except psycopg.errors.UniqueViolation:
                raise ConcurrencyConflict(stream_id, expected_version) from None
        if len(rows) != len(events):
            raise ConcurrencyConflict(stream_id, expected_version)
        return [
            RecordedEvent(
                position=position,
                stream_id=stream_id,
                version=version,
                type=event_type(event),
                event=event,
                metadata=metadata,
                recorded_at=recorded_at,
            )
            for (position, version, recorded_at), event in zip(rows, events, strict=True)
        ]

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = %s AND version > %s ORDER BY version",
                (stream_id, after_version),
            )
            return [row_to_recorded(r) for r in await cur.fetchall()]

    async def last_position(self) -> int:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        """Events with position > `after`, in position order."""
        async with self._connection() as conn:
            return await read_all(conn, after, limit)

    async def read_user_events(self, user_id: str, after: int, limit: int) -> list[RecordedEvent]:
        """Events of every order `user_id` placed, with position > `after`, in position order."""
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE position > %s AND stream_id IN "
                "(SELECT stream_id FROM events WHERE version = 1 AND data->>'user_id' = %s) "
                "ORDER BY position LIMIT %s",
                (after, user_id, limit),
            )
            return [row_to_recorded(r) for r in await cur.fetchall()]

    async def users_of(self, stream_ids: list[str]) -> dict[str, str]:
        """The user who placed each of these orders (streams that are not orders are left out)."""
        async with self._connection() as conn:
            return await users_of(conn, stream_ids)

    async def stream_exists(self, stream_id: str) -> bool:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT 1 FROM events WHERE stream_id = %s LIMIT 1", (stream_id,))
            return await cur.fetchone() is not None


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

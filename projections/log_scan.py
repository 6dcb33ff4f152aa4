"""Reading the whole log fast, for rebuilds.

Fetching a million events row by row costs Python more than folding them. Here
Postgres aggregates each chunk of positions into one JSON array of
`[stream_id, version, recorded_at, event]` (`string_agg … ORDER BY position`,
which guarantees the order) and msgspec decodes the whole array in one call
into tuples and typed events, so Python does no work per row until it folds.
The next chunk is requested before the current one is handed over, so
Postgres builds it while the caller folds.

`recorded_at` stays the text Postgres prints (ISO, UTC, set on the session):
a rebuild copies most timestamps back unchanged, so only the few it computes
with are parsed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.adapt import Buffer, Loader

from domain.events import OrderEvent

# (stream_id, version, recorded_at as Postgres prints it, the event)
LogRow = tuple[str, int, str, OrderEvent]

DEFAULT_CHUNK = 20_000

_CHUNK = """
SELECT '[' || string_agg(
    '[' || to_json(stream_id)::text || ',' || version || ',"' || recorded_at::text || '",'
        || data::text || ']',
    ',' ORDER BY position) || ']'
FROM events WHERE position > %(after)s AND position <= %(upto)s
    AND (%(parts)s = 1 OR mod(hashtext(stream_id)::bigint + 2147483648, %(parts)s) = %(part)s)
"""
# A scoped scan reads only the streams listed in the session's temporary table `scan_scope`.
SCOPE_TABLE = "scan_scope"
_IN_SCOPE = f" AND stream_id IN (SELECT stream_id FROM {SCOPE_TABLE})"

_decoder = msgspec.json.Decoder(list[LogRow])


class _TextAsBytes(Loader):
    """Hands msgspec the bytes as received: no UTF-8 decode of megabytes into a str first."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


async def prepare(conn: AsyncConnection[Any]) -> None:
    """Session settings the scan relies on: timestamps printed in ISO form and UTC, and
    enough memory to sort a chunk without spilling to disk."""
    await conn.execute("SET TimeZone = 'UTC'")
    await conn.execute("SET DateStyle = 'ISO, YMD'")
    await conn.execute("SET work_mem = '64MB'")


async def _fetch(
    conn: AsyncConnection[Any], after: int, upto: int, part: tuple[int, int], scoped: bool
) -> list[LogRow]:
    cur = conn.cursor()
    cur.adapters.register_loader("text", _TextAsBytes)
    query = _CHUNK + _IN_SCOPE if scoped else _CHUNK
    await cur.execute(query, {"after": after, "upto": upto, "part": part[0], "parts": part[1]})
    row = await cur.fetchone()
    return _decoder.decode(row[0]) if row and row[0] is not None else []


def chunk_bounds(after: int, upto: int, chunk: int, cuts: Sequence[int] = ()) -> list[tuple[int, int]]:
    """(after, upto] in ranges of at most `chunk` positions, with a boundary at each cut."""
    edges = sorted({*range(after, upto, chunk), *(c for c in cuts if after < c < upto), upto})
    return [(lo, hi) for lo, hi in zip([after, *edges], edges, strict=False) if lo < hi]


async def scan(
    conn: AsyncConnection[Any],
    after: int,
    upto: int,
    chunk: int = DEFAULT_CHUNK,
    cuts: Sequence[int] = (),
    part: tuple[int, int] = (0, 1),
    scoped: bool = False,
) -> AsyncIterator[tuple[int, list[LogRow]]]:
    """Events with `after` < position <= `upto`, in position order, as (last position
    covered, rows) per chunk of at most `chunk` positions; a chunk ends at each of `cuts`,
    so a caller can stop feeding a consumer there. With `part` = (k, n), only the streams
    whose id hashes to share k of n (every event of a stream lands in the same share);
    `scoped`: only the streams in the session's `scan_scope` table. `conn` must have been
    `prepare`d."""
    bounds = chunk_bounds(after, upto, chunk, cuts)
    if not bounds:
        return
    pending = asyncio.ensure_future(_fetch(conn, *bounds[0], part, scoped))
    try:
        for i, (_, hi) in enumerate(bounds):
            rows = await pending
            if i + 1 < len(bounds):
                pending = asyncio.ensure_future(_fetch(conn, *bounds[i + 1], part, scoped))
                # Let the task send its query now: the caller folds without yielding to the
                # loop, and Postgres should build the next chunk meanwhile.
                await asyncio.sleep(0)
            yield hi, rows
    finally:
        if not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)

"""The audit's checks of the log itself (projections/audit.py): in each stream, versions
run 1..n with no gap, positions rise with versions, and every event's hash is SHA-256 of
the previous hash and its own content (migration 0007), so an event edited, removed or
reordered by hand is found."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from projections.divergence import Divergence

# One pass over the log in stream order. Postgres recomputes each hash from the stored row
# with the function the trigger used (an event written before the chain existed has none);
# only the rows that break something come back.
_LOG_CHECK = """
SELECT stream_id, version, nth, position, previous, broken FROM (
    SELECT stream_id, version, position,
           row_number() OVER w AS nth,
           lag(position) OVER w AS previous,
           hash IS NOT NULL AND hash <> sha256(coalesce(lag(hash) OVER w, ''::bytea)
               || event_content(stream_id, version, type, data, metadata, recorded_at)) AS broken
    FROM events WHERE {scope} WINDOW w AS (PARTITION BY stream_id ORDER BY version)) s
WHERE nth <> version OR previous > position OR broken
"""


async def check(
    conn: AsyncConnection[Any], scope: str, params: dict[str, Any]
) -> tuple[int, list[Divergence]]:
    """(events that carry a hash, what breaks) for the streams `scope` (an SQL condition on
    `events`) selects."""
    cur = await conn.execute(f"SELECT count(hash) FROM events WHERE {scope}", params)
    row = await cur.fetchone()
    hashed = int(row[0]) if row else 0
    found: list[Divergence] = []
    gapped: set[str] = set()
    cur = await conn.execute(_LOG_CHECK.format(scope=scope), params)
    for stream_id, version, nth, position, previous, broken in await cur.fetchall():
        if nth != version and stream_id not in gapped:  # every later row is off too: report the first
            gapped.add(stream_id)
            missing = f"version {nth}" if version == nth + 1 else f"versions {nth}-{version - 1}"
            found.append(
                Divergence(
                    "version_gap", stream_id, f"{missing} missing before version {version}", version=version
                )
            )
        if previous is not None and previous > position:
            found.append(
                Divergence(
                    "position_order",
                    stream_id,
                    f"version {version} is at position {position}, before the previous version's {previous}",
                    version=version,
                )
            )
        if broken:
            found.append(
                Divergence(
                    "hash_mismatch",
                    stream_id,
                    f"version {version} does not match its hash: it (or an earlier event) was changed",
                    version=version,
                )
            )
    return hashed, found

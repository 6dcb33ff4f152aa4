"""`orderengine audit`: does the log hold together, and does the read model say what it says?

Checks, each reported as a `Divergence`:
- every stream's versions run 1..n with no gap, and positions rise with versions;
- every event's hash equals SHA-256(previous hash + its content) (migration 0007),
  so a stored event edited, removed or reordered by hand is found;
- every order folded from the log (with the engine's own `fold`, up to the orders
  projection's checkpoint, so a projection that merely lags is not a divergence)
  equals its `orders` row, field by field; rows without a stream are reported too.

All reads run in one REPEATABLE READ transaction: one consistent snapshot of the
log, the checkpoint and the read model, while the engine keeps writing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from psycopg import AsyncConnection, IsolationLevel
from psycopg.rows import dict_row

from adapters.postgres_event_store import EVENT_COLUMNS, row_to_recorded
from domain.order import fold
from domain.ports import RecordedEvent
from projections.log_follower import read_checkpoint
from projections.orders_projection import NAME as ORDERS
from projections.orders_projection import row_params

BATCH = 5_000
COMPARE_CHUNK = 1_000
_JSON_COLUMNS = ("chosen_quote", "quotes")


@dataclass(frozen=True)
class Divergence:
    kind: str  # version_gap, position_order, hash_mismatch, missing_row, extra_row, field
    order_id: str
    detail: str
    field: str | None = None
    log_value: Any = None
    read_model_value: Any = None
    version: int | None = None


@dataclass
class AuditReport:
    streams: int = 0
    events: int = 0
    rows_compared: int = 0
    hashed_events: int = 0
    checkpoint: int = 0
    seconds: float = 0.0
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def audit(
    conn: AsyncConnection[Any],
    *,
    since: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Audit every order stream (or those with an event at or after `since`)."""
    started = time.perf_counter()
    report = AuditReport()
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
    async with conn.transaction():
        report.checkpoint = await read_checkpoint(conn, ORDERS)
        scope, params = _scope(since)
        report.divergences += await _version_checks(conn, scope, params)
        hashed, broken = await _hash_checks(conn, scope, params)
        report.hashed_events = hashed
        report.divergences += broken
        chunk: list[list[RecordedEvent]] = []
        async for history in _streams(conn, scope, params, report.checkpoint):
            report.streams += 1
            report.events += len(history)
            if _is_order(history[0].stream_id):
                chunk.append(history)
            if len(chunk) >= COMPARE_CHUNK:
                report.divergences += await _compare_chunk(conn, chunk)
                chunk = []
                if progress is not None:
                    progress(report.events)
        report.divergences += await _compare_chunk(conn, chunk)
        if since is None:
            report.divergences += await _extra_rows(conn)
        report.rows_compared = report.streams
    report.seconds = time.perf_counter() - started
    return report


def _is_order(stream_id: str) -> bool:
    try:
        uuid.UUID(stream_id)
    except ValueError:
        return False
    return True


def _scope(since: datetime | None) -> tuple[str, dict[str, Any]]:
    if since is None:
        return "TRUE", {}
    return (
        "stream_id IN (SELECT DISTINCT stream_id FROM events WHERE recorded_at >= %(since)s)",
        {"since": since},
    )


async def _version_checks(conn: AsyncConnection[Any], scope: str, params: dict[str, Any]) -> list[Divergence]:
    found: list[Divergence] = []
    cur = await conn.execute(
        f"SELECT stream_id, count(*), max(version) FROM events WHERE {scope} "
        "GROUP BY stream_id HAVING count(*) <> max(version)",
        params,
    )
    for stream_id, count, top in await cur.fetchall():
        found.append(
            Divergence("version_gap", stream_id, f"{count} events but versions up to {top}: some are missing")
        )
    cur = await conn.execute(
        f"SELECT stream_id, version, position, previous FROM ("
        f" SELECT stream_id, version, position, lag(position) OVER w AS previous FROM events"
        f" WHERE {scope} WINDOW w AS (PARTITION BY stream_id ORDER BY version)) s "
        "WHERE previous > position",
        params,
    )
    for stream_id, version, position, previous in await cur.fetchall():
        found.append(
            Divergence(
                "position_order",
                stream_id,
                f"version {version} is at position {position}, before the previous version's {previous}",
                version=version,
            )
        )
    return found


async def _hash_checks(
    conn: AsyncConnection[Any], scope: str, params: dict[str, Any]
) -> tuple[int, list[Divergence]]:
    # Recomputed by Postgres from the stored rows, with the function the trigger used.
    cur = await conn.execute(
        "SELECT stream_id, version, hash IS NOT NULL, hash = expected FROM ("
        " SELECT stream_id, version, hash, sha256(coalesce(lag(hash) OVER w, ''::bytea)"
        "   || event_content(stream_id, version, type, data, metadata, recorded_at)) AS expected"
        f" FROM events WHERE {scope} WINDOW w AS (PARTITION BY stream_id ORDER BY version)) s",
        params,
    )
    hashed = 0
    broken: list[Divergence] = []
    for stream_id, version, has_hash, matches in await cur.fetchall():
        if not has_hash:
            continue  # written before the chain existed
        hashed += 1
        if not matches:
            broken.append(
                Divergence(
                    "hash_mismatch",
                    stream_id,
                    f"version {version} does not match its hash: it (or an earlier event) was changed",
                    version=version,
                )
            )
    return hashed, broken


async def _streams(
    conn: AsyncConnection[Any], scope: str, params: dict[str, Any], upto: int
) -> AsyncIterator[list[RecordedEvent]]:
    """Each stream's events up to the checkpoint, one stream at a time, read in bulk."""
    async with conn.cursor(name="audit_events") as cur:
        cur.itersize = BATCH
        await cur.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE position <= %(upto)s AND {scope}"
            " ORDER BY stream_id, version",
            {**params, "upto": upto},
        )
        history: list[RecordedEvent] = []
        async for row in cur:
            recorded = row_to_recorded(row)
            if history and recorded.stream_id != history[0].stream_id:
                yield history
                history = []
            history.append(recorded)
        if history:
            yield history


async def _compare_chunk(
    conn: AsyncConnection[Any], histories: list[list[RecordedEvent]]
) -> list[Divergence]:
    """Fold each order and compare it with its row; the rows of a chunk are read in one query."""
    if not histories:
        return []
    expected = {h[0].stream_id: row_params(fold(r.event for r in h), h) for h in histories}
    columns = next(iter(expected.values())).keys()
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {', '.join(columns)} FROM orders WHERE id = ANY(%s::uuid[])", (list(expected),)
    )
    stored = {str(row["id"]): row for row in await cur.fetchall()}
    found: list[Divergence] = []
    for order_id, logged in expected.items():
        actual = stored.get(order_id)
        if actual is None:
            found.append(
                Divergence("missing_row", order_id, "the log has this order, the read model does not")
            )
            continue
        found += [
            Divergence(
                "field",
                order_id,
                f"{name} differs",
                field=name,
                log_value=_plain(logged[name]),
                read_model_value=_plain(actual[name]),
            )
            for name in columns
            if not _same(name, logged[name], actual[name])
        ]
    return found


async def _extra_rows(conn: AsyncConnection[Any]) -> list[Divergence]:
    cur = await conn.execute(
        "SELECT id::text FROM orders o"
        " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = o.id::text)"
    )
    return [
        Divergence("extra_row", order_id, "the read model has this order, the log does not")
        for (order_id,) in await cur.fetchall()
    ]


def _same(name: str, logged: Any, stored: Any) -> bool:
    if name in _JSON_COLUMNS:
        logged = msgspec.json.decode(logged) if isinstance(logged, str) else logged
    if isinstance(stored, uuid.UUID):
        stored = str(stored)
    if isinstance(logged, Decimal) and isinstance(stored, Decimal):
        return logged.compare_total(stored) == 0 or logged == stored
    return bool(logged == stored)


def _plain(value: Any) -> Any:
    """A value as JSON can carry it (for --json and for printing)."""
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return msgspec.json.decode(value)
        except msgspec.DecodeError:
            return value
    return value

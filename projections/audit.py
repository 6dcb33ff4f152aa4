"""`orderengine audit`: does the log hold together, and do the read models say what it says?

Checks, each reported as a `Divergence`:
- every stream's versions run 1..n with no gap, and positions rise with versions;
- every event's hash equals SHA-256(previous hash + its content) (migration 0007),
  so a stored event edited, removed or reordered by hand is found;
- every order folded from the log (with the engine's own `fold`, up to the orders
  projection's checkpoint, so a projection that merely lags is not a divergence)
  equals its `orders` row, field by field; rows without a stream are reported too;
- every order's contribution to the statistics (with the stats follower's own
  `advance`, up to the stats checkpoint) equals its `stats_orders` row, and the sums
  in `stats_user_pairs` and `stats_pairs` equal the sums of those rows (computed by
  Postgres, exactly), so an edited count or volume is found.

All reads run in one REPEATABLE READ transaction: one consistent snapshot of the
log, the checkpoints and the read models, while the engine keeps writing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
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
from projections import stats_projection as stats
from projections.log_follower import read_checkpoint
from projections.orders_projection import NAME as ORDERS
from projections.orders_projection import row_params
from projections.stats_projection import Contribution

BATCH = 5_000
COMPARE_CHUNK = 1_000
_JSON_COLUMNS = ("chosen_quote", "quotes")


@dataclass(frozen=True)
class Divergence:
    # version_gap, position_order, hash_mismatch, missing_row, extra_row, field (orders);
    # stats_missing_row, stats_extra_row, stats_field, stats_sum (statistics)
    kind: str
    order_id: str  # for stats_sum: the table and key of the sum, e.g. "stats_pairs[SOL,USDC,confirmed]"
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
    checkpoint: int = 0  # the orders projection's
    stats_checkpoint: int = 0
    stats_rows_compared: int = 0
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
        report.stats_checkpoint = await read_checkpoint(conn, stats.NAME)
        scope, params = _scope(since)
        report.divergences += await _version_checks(conn, scope, params)
        hashed, broken = await _hash_checks(conn, scope, params)
        report.hashed_events = hashed
        report.divergences += broken
        upto = max(report.checkpoint, report.stats_checkpoint)
        chunk: list[list[RecordedEvent]] = []
        async for history in _streams(conn, scope, params, upto):
            report.streams += 1
            report.events += len(history)
            if _is_order(history[0].stream_id):
                chunk.append(history)
            if len(chunk) >= COMPARE_CHUNK:
                await _compare_chunk(conn, chunk, report)
                chunk = []
                if progress is not None:
                    progress(report.events)
        await _compare_chunk(conn, chunk, report)
        if since is None:
            report.divergences += await _extra_rows(conn)
        report.divergences += await _sum_checks(conn)
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
    conn: AsyncConnection[Any], histories: list[list[RecordedEvent]], report: AuditReport
) -> None:
    """Fold each order and compare it with its rows; a chunk's rows are read in one query per table."""
    if not histories:
        return
    orders_upto, stats_upto = report.checkpoint, report.stats_checkpoint
    expected: dict[str, dict[str, Any]] = {}
    contributions: dict[str, Contribution] = {}
    for history in histories:
        applied = (
            history
            if history[-1].position <= orders_upto
            else [r for r in history if r.position <= orders_upto]
        )
        if applied:
            expected[history[0].stream_id] = row_params(fold(r.event for r in applied), applied)
        contribution = _contribution(history, stats_upto)
        if contribution is not None:
            contributions[contribution.order_id] = contribution
    report.rows_compared += len(expected)
    report.stats_rows_compared += len(contributions)
    report.divergences += await _compare_orders(conn, expected)
    report.divergences += await _compare_stats(conn, contributions)


def _contribution(history: list[RecordedEvent], upto: int) -> Contribution | None:
    """The order's statistics row as the stats follower builds it from these events."""
    current: Contribution | None = None
    for r in history:
        if r.position > upto:
            break
        current = stats.advance(current, r.stream_id, r.version, r.event, r.recorded_at)
        if current is None:
            return None  # not an order: the follower leaves it out
    return current


async def _compare_orders(
    conn: AsyncConnection[Any], expected: dict[str, dict[str, Any]]
) -> list[Divergence]:
    if not expected:
        return []
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
        found += _fields("field", order_id, columns, logged, actual, "")
    return found


async def _compare_stats(conn: AsyncConnection[Any], expected: dict[str, Contribution]) -> list[Divergence]:
    if not expected:
        return []
    cur = await conn.execute(
        f"SELECT {', '.join(stats.ORDER_COLUMNS)} FROM {stats.ORDERS_TABLE} WHERE order_id = ANY(%s::uuid[])",
        (list(expected),),
    )
    stored = {c.order_id: c for c in map(stats.contribution_from_row, await cur.fetchall())}
    found: list[Divergence] = []
    for order_id, logged in expected.items():
        actual = stored.get(order_id)
        if actual is None:
            found.append(
                Divergence(
                    "stats_missing_row", order_id, f"the log has this order, {stats.ORDERS_TABLE} does not"
                )
            )
            continue
        found += _fields(
            "stats_field",
            order_id,
            stats.ORDER_COLUMNS,
            msgspec.structs.asdict(logged),
            msgspec.structs.asdict(actual),
            f"{stats.ORDERS_TABLE}.",
        )
    return found


def _fields(
    kind: str,
    order_id: str,
    columns: Iterable[str],
    logged: dict[str, Any],
    stored: dict[str, Any],
    prefix: str,
) -> list[Divergence]:
    return [
        Divergence(
            kind,
            order_id,
            f"{prefix}{name} differs",
            field=name,
            log_value=_plain(logged[name]),
            read_model_value=_plain(stored[name]),
        )
        for name in columns
        if not _same(name, logged[name], stored[name])
    ]


_SUM_CHECK = """
WITH expected AS (
    SELECT {keys}, count(*) AS orders, sum(amount) AS amount_in, coalesce(sum(amount_out), 0) AS amount_out,
           coalesce(sum(execution_seconds), 0) AS execution_seconds
    FROM stats_orders GROUP BY {keys})
SELECT {keys}, e.orders, e.amount_in, e.amount_out, e.execution_seconds,
       s.orders, s.amount_in, s.amount_out, s.execution_seconds
FROM expected e FULL JOIN {table} s USING ({keys})
WHERE (e.orders, e.amount_in, e.amount_out, e.execution_seconds)
      IS DISTINCT FROM (s.orders, s.amount_in, s.amount_out, s.execution_seconds)
"""
_MEASURES = ("orders", "amount_in", "amount_out", "execution_seconds")


async def _sum_checks(conn: AsyncConnection[Any]) -> list[Divergence]:
    """Each aggregate row against the sum of the `stats_orders` rows under its key (those rows
    are compared with the log above); a missing or extra aggregate row differs in every measure."""
    found: list[Divergence] = []
    for table, keys in ((stats.USER_PAIRS_TABLE, stats.USER_PAIR_KEYS), (stats.PAIRS_TABLE, stats.PAIR_KEYS)):
        cur = await conn.execute(_SUM_CHECK.format(keys=", ".join(keys), table=table))
        for row in await cur.fetchall():
            key, summed, stored = row[: len(keys)], row[len(keys) : -4], row[-4:]
            where = f"{table}[{','.join(map(str, key))}]"
            found += [
                Divergence(
                    "stats_sum",
                    where,
                    f"{table}.{name} differs from the sum of its orders' {stats.ORDERS_TABLE} rows",
                    field=name,
                    log_value=_plain(expected),
                    read_model_value=_plain(actual),
                )
                for name, expected, actual in zip(_MEASURES, summed, stored, strict=True)
                if expected != actual
            ]
    return found


async def _extra_rows(conn: AsyncConnection[Any]) -> list[Divergence]:
    found: list[Divergence] = []
    for kind, table, key in (
        ("extra_row", "orders", "id"),
        ("stats_extra_row", stats.ORDERS_TABLE, "order_id"),
    ):
        cur = await conn.execute(
            f"SELECT {key}::text FROM {table} o"
            f" WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = o.{key}::text)"
        )
        found += [
            Divergence(kind, order_id, f"{table} has this order, the log does not")
            for (order_id,) in await cur.fetchall()
        ]
    return found


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

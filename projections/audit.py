"""`orderengine audit`: does the log hold together, and do the read models say what it says?

Checks, each reported as a `Divergence`:
- every stream's versions run 1..n with no gap, and positions rise with versions;
- every event's hash equals SHA-256(previous hash + its content) (migration 0007),
  so a stored event edited, removed or reordered by hand is found;
- every order folded from the log (with the engine's own `evolve`, through the
  rebuild's `OrdersBuilder` and the orders projection's own `row_params`, up to the
  orders projection's checkpoint, so a projection that merely lags is not a
  divergence) equals its `orders` row, field by field; rows without a stream and
  streams the fold refuses are reported too;
- every order's contribution to the statistics (with the stats follower's own
  `advance`, through the rebuild's `StatsBuilder`, up to the stats checkpoint) equals
  its `stats_orders` row, and the sums in `stats_user_pairs` and `stats_pairs` equal
  the sums of those rows (computed by Postgres, exactly), so an edited count or
  volume is found.

One consistent snapshot, while the engine keeps writing: the checks run in one
REPEATABLE READ transaction, which exports its snapshot (`SET TRANSACTION SNAPSHOT`)
to a connection that scans the log and one that checks versions, positions and
hashes meanwhile (projections/log_checks.py). The scan is the rebuild's
(projections/log_scan.py: chunks of positions decoded in one call, the next chunk
built by Postgres while this one is folded and compared), and the folded rows are
compared with the stored ones a few thousand at a time, whole rows first (most are
equal), field by field only where they differ.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from psycopg import AsyncConnection, IsolationLevel, sql
from psycopg.types.json import set_json_loads

from adapters.database import Database
from projections import log_checks, log_scan, orders_bulk
from projections import stats_projection as stats
from projections.divergence import KINDS, Divergence
from projections.log_follower import read_checkpoint
from projections.orders_projection import NAME as ORDERS
from projections.rebuild import PROJECTIONS

COMPARE_CHUNK = 2_000
_JSON_COLUMNS = ("chosen_quote", "quotes")
# Read as the scan prints them (text, UTC, ISO), so most rows compare equal as tuples.
_AS_TEXT = {"id", "order_id", "created_at", "updated_at"}


@dataclass
class AuditReport:
    streams: int = 0  # streams whose events were folded
    events: int = 0  # events folded (up to the later of the two checkpoints)
    rows_compared: int = 0
    hashed_events: int = 0
    checkpoint: int = 0  # the orders projection's
    stats_checkpoint: int = 0
    # Projections whose tables older code built (a rebuild is due): their rows can differ
    # from what this code folds, and are reported as they are.
    outdated: list[str] = field(default_factory=list)
    stats_rows_compared: int = 0
    seconds: float = 0.0
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def audit(
    db: Database,
    *,
    since: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Audit every order stream (or those with an event at or after `since`)."""
    started = time.perf_counter()
    report = AuditReport()
    scope, params = _scope(since)
    async with (
        await db.connect(autocommit=False) as main,
        await db.connect(autocommit=False) as scanner,
        await db.connect(autocommit=False) as checker,
    ):
        for conn in (main, scanner, checker):
            await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
        set_json_loads(msgspec.json.decode, main)  # the stored JSON columns, decoded as the folded ones
        async with main.transaction():
            await log_scan.prepare(main)  # timestamps as the scan prints them
            report.checkpoint = await read_checkpoint(main, ORDERS)
            report.stats_checkpoint = await read_checkpoint(main, stats.NAME)
            report.outdated = await _outdated(main)
            snapshot = sql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                sql.Literal(await _scalar(main, "SELECT pg_export_snapshot()"))
            )
            async with scanner.transaction(), checker.transaction():
                for conn in (scanner, checker):
                    await conn.execute(snapshot)
                await log_scan.prepare(scanner)
                if since is not None:
                    await scanner.execute(
                        f"CREATE TEMPORARY TABLE {log_scan.SCOPE_TABLE} ON COMMIT DROP AS"
                        f" SELECT DISTINCT stream_id FROM events WHERE {scope}",
                        params,
                    )
                # Postgres checks the log (one sort of it) while this process folds and compares.
                (hashed, found), _ = await asyncio.gather(
                    log_checks.check(checker, scope, params),
                    _compare_folds(main, scanner, report, since is not None, progress),
                )
                report.hashed_events = hashed
                report.divergences[:0] = found
            if since is None:
                report.divergences += await _extra_rows(main)
            report.divergences += await _sum_checks(main)
    report.seconds = time.perf_counter() - started
    return report


async def _outdated(conn: AsyncConnection[Any]) -> list[str]:
    code = {name: p.version for name, p in PROJECTIONS.items()}
    cur = await conn.execute(
        "SELECT name, version FROM projection_checkpoints WHERE name = ANY(%s)", (list(code),)
    )
    return sorted(name for name, version in await cur.fetchall() if version < code[name])


async def _scalar(conn: AsyncConnection[Any], query: str, params: Any = None) -> Any:
    row = await (await conn.execute(query, params)).fetchone()
    return row[0] if row else None


def _scope(since: datetime | None) -> tuple[str, dict[str, Any]]:
    if since is None:
        return "TRUE", {}
    return (
        "stream_id IN (SELECT DISTINCT stream_id FROM events WHERE recorded_at >= %(since)s)",
        {"since": since},
    )


# -- folds against rows ------------------------------------------------------------------------


class _AuditOrdersBuilder(orders_bulk.OrdersBuilder):
    """The rebuild's builder, but a stream the fold refuses is a finding, not the end."""

    def __init__(self, report: AuditReport) -> None:
        super().__init__()
        self._report = report

    def unfoldable(self, stream_id: str, version: int, reason: str) -> None:
        self._report.divergences.append(
            Divergence("unfoldable", stream_id, f"version {version}: {reason}", version=version)
        )


@dataclass(frozen=True)
class _Table:
    name: str
    key: str
    columns: Sequence[str]
    kinds: tuple[str, str]  # (missing row, field)

    def select(self) -> str:
        columns = ", ".join(f"{c}::text" if c in _AS_TEXT else c for c in self.columns)
        return f"SELECT {columns} FROM {self.name} WHERE {self.key} = ANY(%s::uuid[])"


_ORDERS = _Table("orders", "id", orders_bulk.COLUMNS, ("missing_row", "field"))
_STATS = _Table(stats.ORDERS_TABLE, "order_id", stats.ORDER_COLUMNS, ("stats_missing_row", "stats_field"))


async def _compare_folds(
    main: AsyncConnection[Any],
    scanner: AsyncConnection[Any],
    report: AuditReport,
    scoped: bool,
    progress: Callable[[int], None] | None,
) -> None:
    orders_upto, stats_upto = report.checkpoint, report.stats_checkpoint
    builders = (
        (_ORDERS, _AuditOrdersBuilder(report), orders_upto),
        (_STATS, stats.StatsBuilder(), stats_upto),
    )
    pending: dict[str, list[tuple[Any, ...]]] = {_ORDERS.name: [], _STATS.name: []}
    async for last, rows in log_scan.scan(
        scanner, 0, max(orders_upto, stats_upto), cuts=(orders_upto, stats_upto), scoped=scoped
    ):
        report.events += len(rows)
        report.streams += sum(1 for row in rows if row[1] == 1)
        for table, builder, upto in builders:
            if last <= upto:
                pending[table.name] += builder.feed(rows)[table.name]
            if len(pending[table.name]) >= COMPARE_CHUNK:
                await _compare(main, table, pending[table.name], report)
                pending[table.name] = []
        if progress is not None:
            progress(report.events)
    for table, builder, _ in builders:
        await _compare(main, table, pending[table.name] + builder.finish()[table.name], report)


async def _compare(
    conn: AsyncConnection[Any], table: _Table, rows: list[tuple[Any, ...]], report: AuditReport
) -> None:
    """Folded rows (in `table.columns` order) against the stored ones, read in one query."""
    if not rows:
        return
    if table is _ORDERS:
        report.rows_compared += len(rows)
        rows = [_decoded(row) for row in rows]
    else:
        report.stats_rows_compared += len(rows)
    cur = await conn.execute(table.select(), ([str(row[0]) for row in rows],))
    stored = {row[0]: row for row in await cur.fetchall()}
    missing, differs = table.kinds
    for logged in rows:
        order_id = str(logged[0])
        actual = stored.get(order_id)
        if actual is None:
            report.divergences.append(
                Divergence(missing, order_id, f"the log has this order, {table.name} does not")
            )
        elif logged != actual:  # most rows are equal as a whole
            report.divergences += _fields(differs, order_id, table, logged, actual)


_JSON_AT = [orders_bulk.COLUMNS.index(c) for c in _JSON_COLUMNS]


def _decoded(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """An orders row with its JSON columns decoded, as psycopg returns the stored ones."""
    values = list(row)
    for i in _JSON_AT:
        if values[i] is not None:
            values[i] = msgspec.json.decode(values[i])
    return tuple(values)


def _fields(
    kind: str, order_id: str, table: _Table, logged: Sequence[Any], stored: Sequence[Any]
) -> list[Divergence]:
    return [
        Divergence(
            kind,
            order_id,
            f"{table.name}.{name} differs" if table is _STATS else f"{name} differs",
            field=name,
            log_value=_plain(mine),
            read_model_value=_plain(theirs),
        )
        for name, mine, theirs in zip(table.columns, logged, stored, strict=True)
        if not _same(mine, theirs)
    ]


# -- the statistics' sums, and rows without a stream -------------------------------------------

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
    for kind, table in (("extra_row", _ORDERS), ("stats_extra_row", _STATS)):
        cur = await conn.execute(
            f"SELECT {table.key}::text FROM {table.name} o"
            f" WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = o.{table.key}::text)"
        )
        found += [
            Divergence(kind, order_id, f"{table.name} has this order, the log does not")
            for (order_id,) in await cur.fetchall()
        ]
    return found


# -- values ------------------------------------------------------------------------------------


def _same(logged: Any, stored: Any) -> bool:
    if isinstance(logged, str) and isinstance(stored, datetime):
        logged = datetime.fromisoformat(logged)
    elif isinstance(stored, str) and isinstance(logged, datetime):
        stored = datetime.fromisoformat(stored)
    if isinstance(stored, uuid.UUID):
        stored = str(stored)
    if isinstance(logged, Decimal) and isinstance(stored, Decimal):
        return logged == stored  # numerically: 1.50 is 1.5
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


__all__ = ["KINDS", "AuditReport", "Divergence", "audit"]

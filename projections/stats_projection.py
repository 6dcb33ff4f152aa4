"""Per-user and per-pair order statistics (db/migrations/0008_order_stats.sql).

Tables: `stats_orders` holds what each order contributes now (its user, pair,
status, amount in, amount out and execution time once confirmed, and the version
of the last event applied); `stats_user_pairs` and `stats_pairs` hold the sums of
those contributions per (user, pair, status) and per (pair, status).

An event that moves an order to another status moves its contribution: the old
one is subtracted from its status's row and the new one added to the new
status's row, in the same transaction as the follower's checkpoint, so each
event counts exactly once. The sums are computed by Postgres (exact `numeric`),
never in Python, and a row whose count drops to 0 is deleted, so the tables are
exactly what a rebuild from the log produces (projections/rebuild.py). An event
at or below an order's recorded version is ignored, so re-applying a batch (two
followers overlapping for a moment, or a rebuild's swap) changes nothing.

Streams that are not orders (not a UUID, or not starting with `OrderPending`)
are left out, as the orders projection leaves them out.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
from psycopg import AsyncConnection, sql

from domain.events import Event, OrderConfirmed, OrderPending
from domain.order import STATUS_OF_EVENT, TERMINAL
from domain.ports import RecordedEvent

NAME = "stats"
# The version of this projection's code (see orders_projection.VERSION).
VERSION = 1

ORDERS_TABLE = "stats_orders"
USER_PAIRS_TABLE = "stats_user_pairs"
PAIRS_TABLE = "stats_pairs"
TABLES = (ORDERS_TABLE, USER_PAIRS_TABLE, PAIRS_TABLE)

ORDER_COLUMNS = (
    "order_id",
    "user_id",
    "token_in",
    "token_out",
    "status",
    "amount",
    "amount_out",
    "placed_at",
    "execution_seconds",
    "version",
)


class Contribution(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One order's share of the statistics: a row of `stats_orders`."""

    order_id: str
    user_id: str
    token_in: str
    token_out: str
    status: str
    amount: Decimal
    amount_out: Decimal | None
    placed_at: datetime
    execution_seconds: Decimal | None
    version: int

    def row(self) -> tuple[Any, ...]:
        """The values in `ORDER_COLUMNS` order."""
        return (
            self.order_id,
            self.user_id,
            self.token_in,
            self.token_out,
            self.status,
            self.amount,
            self.amount_out,
            self.placed_at,
            self.execution_seconds,
            self.version,
        )


def contribution_from_row(row: Sequence[Any]) -> Contribution:
    """A row of `stats_orders` (in `ORDER_COLUMNS` order) as a contribution."""
    values = dict(zip(ORDER_COLUMNS, row, strict=True))
    values["order_id"] = str(values["order_id"])  # a UUID from Postgres; stream ids are strings
    return Contribution(**values)


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_order_id(stream_id: str) -> bool:
    """Whether the stream can be an order: a UUID, as the orders projection decides it."""
    if _CANONICAL_UUID.fullmatch(stream_id):  # how the API writes them: skip the slower parse
        return True
    try:
        uuid.UUID(stream_id)
    except ValueError:
        return False
    return True


def _instant(recorded_at: datetime | str) -> datetime:
    # The rebuild reads timestamps as Postgres prints them and parses only the few it needs.
    return recorded_at if isinstance(recorded_at, datetime) else datetime.fromisoformat(recorded_at)


def _seconds(start: datetime, end: datetime) -> Decimal:
    """Exact seconds between two instants (a timedelta is whole microseconds)."""
    delta = end - start
    return Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def advance(
    current: Contribution | None, stream_id: str, version: int, event: Event, recorded_at: datetime | str
) -> Contribution | None:
    """The order's contribution after this event (`current` itself when the event changes
    nothing; None while the stream is not an order). Pure: the incremental follower and the
    bulk rebuild share it, so both count alike."""
    if current is None:
        if version != 1 or not isinstance(event, OrderPending):
            return None
        return Contribution(
            order_id=stream_id,
            user_id=event.user_id,
            token_in=event.token_in,
            token_out=event.token_out,
            status="pending",
            amount=event.amount,
            amount_out=None,
            placed_at=_instant(recorded_at),
            execution_seconds=None,
            version=1,
        )
    if version <= current.version:
        return current  # applied already
    if isinstance(event, OrderConfirmed):
        return msgspec.structs.replace(
            current,
            status="confirmed",
            amount_out=event.amount_out,
            execution_seconds=_seconds(current.placed_at, _instant(recorded_at)),
            version=version,
        )
    status = STATUS_OF_EVENT[type(event)]
    if status is None or status == current.status:
        return msgspec.structs.replace(current, version=version)
    return msgspec.structs.replace(current, status=status, version=version)


# -- applying a batch ------------------------------------------------------------------------

_LOAD = "SELECT {columns} FROM {table} WHERE order_id = ANY(%s::uuid[])"

_UPSERT_ORDER = """
INSERT INTO {table} ({columns}) VALUES ({values})
ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, amount_out = EXCLUDED.amount_out,
    execution_seconds = EXCLUDED.execution_seconds, version = EXCLUDED.version
"""

# Each order changed by the batch arrives twice (sign -1 with its old contribution, +1 with
# its new one) or once (+1, new order); Postgres sums them per key, exactly.
_ADD = """
INSERT INTO {table} AS t ({keys}, orders, amount_in, amount_out, execution_seconds)
SELECT {keys}, sum(sign), sum(sign * amount), sum(sign * amount_out), sum(sign * execution_seconds)
FROM unnest(%(sign)s::int[], %(user_id)s::text[], %(token_in)s::text[], %(token_out)s::text[],
            %(status)s::text[], %(amount)s::numeric[], %(amount_out)s::numeric[],
            %(execution_seconds)s::numeric[])
     AS d(sign, user_id, token_in, token_out, status, amount, amount_out, execution_seconds)
GROUP BY {keys}
ON CONFLICT ({keys}) DO UPDATE SET orders = t.orders + EXCLUDED.orders,
    amount_in = t.amount_in + EXCLUDED.amount_in, amount_out = t.amount_out + EXCLUDED.amount_out,
    execution_seconds = t.execution_seconds + EXCLUDED.execution_seconds
"""

_DROP_EMPTY = """
DELETE FROM {table} WHERE orders = 0 AND ({keys}) IN (
    SELECT {keys} FROM unnest(%(user_id)s::text[], %(token_in)s::text[], %(token_out)s::text[],
                              %(status)s::text[]) AS d(user_id, token_in, token_out, status))
"""

USER_PAIR_KEYS = ("user_id", "token_in", "token_out", "status")
PAIR_KEYS = ("token_in", "token_out", "status")


def _names(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


@functools.lru_cache(maxsize=64)
def _statement(template: str, table: str, keys: tuple[str, ...] = ()) -> str:
    """The SQL of `template` for `table` (and `keys`), composed once: a query psycopg sees
    again as the same string is converted once and prepared on each connection."""
    composed = sql.SQL(template).format(
        table=sql.Identifier(table),
        columns=_names(ORDER_COLUMNS),
        values=sql.SQL(", ").join([sql.Placeholder()] * len(ORDER_COLUMNS)),
        keys=_names(keys),
    )
    return composed.as_string(None)


async def apply_batch(
    conn: AsyncConnection[Any], events: list[RecordedEvent], tables: Sequence[str] = TABLES
) -> None:
    """The follower's handler; `tables` (orders, user pairs, pairs) lets a rebuild catch
    its shadow tables up through the very same code."""
    orders_table, user_pairs_table, pairs_table = tables
    ids = sorted({e.stream_id for e in events if is_order_id(e.stream_id)})
    if not ids:
        return
    cur = await conn.execute(_statement(_LOAD, orders_table), (ids,))
    before = {c.order_id: c for c in map(contribution_from_row, await cur.fetchall())}
    known: dict[str, Contribution] = dict(before)
    wanted = set(ids)
    for e in events:
        if e.stream_id in wanted:
            new = advance(known.get(e.stream_id), e.stream_id, e.version, e.event, e.recorded_at)
            if new is not None:
                known[e.stream_id] = new
    changed = [c for oid, c in known.items() if before.get(oid) is not c]
    if not changed:
        return
    async with conn.cursor() as c:
        await c.executemany(_statement(_UPSERT_ORDER, orders_table), [c.row() for c in changed])
    # An event that kept the status (a retry, the swap request) changes no sum.
    moved = [c for c in changed if c.order_id not in before or _share(before[c.order_id]) != _share(c)]
    moves = [(-1, before[c.order_id]) for c in moved if c.order_id in before] + [(1, c) for c in moved]
    if moves:
        await add_to_sums(conn, moves, user_pairs_table, pairs_table)


def _share(c: Contribution) -> tuple[Any, ...]:
    """What of a contribution the sums hold."""
    return (c.status, c.amount_out, c.execution_seconds)


async def add_to_sums(
    conn: AsyncConnection[Any],
    moves: Iterable[tuple[int, Contribution]],
    user_pairs_table: str = USER_PAIRS_TABLE,
    pairs_table: str = PAIRS_TABLE,
) -> None:
    """Add (+1) or take away (-1) contributions from both aggregate tables."""
    columns: dict[str, list[Any]] = {
        k: [] for k in ("sign", "user_id", "token_in", "token_out", "status", "amount", "amount_out")
    }
    columns["execution_seconds"] = []
    for sign, c in moves:
        columns["sign"].append(sign)
        columns["user_id"].append(c.user_id)
        columns["token_in"].append(c.token_in)
        columns["token_out"].append(c.token_out)
        columns["status"].append(c.status)
        columns["amount"].append(c.amount)
        columns["amount_out"].append(c.amount_out or Decimal(0))
        columns["execution_seconds"].append(c.execution_seconds or Decimal(0))
    removed = [i for i, sign in enumerate(columns["sign"]) if sign < 0]
    gone = {k: [columns[k][i] for i in removed] for k in USER_PAIR_KEYS}
    for table, keys in ((user_pairs_table, USER_PAIR_KEYS), (pairs_table, PAIR_KEYS)):
        await conn.execute(_statement(_ADD, table, keys), columns)
        if removed:  # only a key something left can have dropped to zero
            await conn.execute(_statement(_DROP_EMPTY, table, keys), gone)


# -- the bulk build of a rebuild ---------------------------------------------------------

_SUMS = """
INSERT INTO {target} ({keys}, orders, amount_in, amount_out, execution_seconds)
SELECT {keys}, count(*), sum(amount), coalesce(sum(amount_out), 0), coalesce(sum(execution_seconds), 0)
FROM {source} GROUP BY {keys}
"""


class StatsBuilder:
    """For projections/rebuild.py: folds contributions chunk by chunk with `advance`, hands
    over those of orders that ended (they cannot change again), and derives the sums from
    the loaded `stats_orders` in SQL, where they are exact."""

    tables: Sequence[str] = TABLES
    columns: ClassVar[dict[str, Sequence[str]]] = {ORDERS_TABLE: ORDER_COLUMNS}

    def __init__(self) -> None:
        self._open: dict[str, Contribution] = {}

    def feed(self, rows: Sequence[tuple[str, int, str, Event]]) -> dict[str, list[tuple[Any, ...]]]:
        done: list[tuple[Any, ...]] = []
        open_orders = self._open
        for stream_id, version, recorded_at, event in rows:
            current = open_orders.get(stream_id)
            new = advance(current, stream_id, version, event, recorded_at)
            if new is None or new is current:
                continue
            if current is None and not is_order_id(stream_id):
                continue  # an OrderPending on a stream that is not an order id
            if new.status in TERMINAL:
                done.append(new.row())
                open_orders.pop(stream_id, None)
            else:
                open_orders[stream_id] = new
        return {ORDERS_TABLE: done}

    def finish(self) -> dict[str, list[tuple[Any, ...]]]:
        rows = [c.row() for c in self._open.values()]
        self._open.clear()
        return {ORDERS_TABLE: rows}

    async def after_load(self, conn: AsyncConnection[Any], shadow: dict[str, str]) -> None:
        source = sql.Identifier(shadow[ORDERS_TABLE])
        for table, keys in ((USER_PAIRS_TABLE, USER_PAIR_KEYS), (PAIRS_TABLE, PAIR_KEYS)):
            await conn.execute(
                sql.SQL(_SUMS).format(target=sql.Identifier(shadow[table]), keys=_names(keys), source=source)
            )


async def catch_up(conn: AsyncConnection[Any], shadow: dict[str, str], events: list[RecordedEvent]) -> None:
    """A rebuild's catch-up of its shadow tables: the follower's own handler, on other tables."""
    await apply_batch(conn, events, tuple(shadow[t] for t in TABLES))

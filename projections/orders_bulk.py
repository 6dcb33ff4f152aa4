"""The `orders` read model built in bulk, for a rebuild (projections/rebuild.py).

Each order is folded with the domain's own `evolve`, from its first event to its
last in log order, and turned into a row by the orders projection's own
`row_params`, so a rebuilt row is what the incremental projection writes. An
order is handed to COPY as soon as it ends (no later event can change a
terminal order), so memory holds only the orders still open at that point of
the log. Lifecycle metrics are never counted here: only the live follower
counts them (projections/orders_projection.py `apply_batch`), so a rebuild does
not count history again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from psycopg import AsyncConnection, sql

from adapters.postgres_event_store import EVENT_COLUMNS, row_to_recorded
from domain.errors import InvalidTransition
from domain.order import TERMINAL, OrderState, evolve, fold
from domain.ports import RecordedEvent
from projections import orders_projection
from projections.log_scan import LogRow
from projections.rebuild_errors import UnfoldableLog
from projections.stats_projection import is_order_id

log = logging.getLogger("orderengine.rebuild")

TABLE = orders_projection.NAME  # the projection and its table share the name


def _row_params(state: OrderState, created_at: datetime | str, updated_at: datetime | str) -> dict[str, Any]:
    return orders_projection.row_params_at(state, created_at, updated_at)


COLUMNS: tuple[str, ...] = tuple(_row_params(OrderState(), "", ""))


def order_row(state: OrderState, created_at: datetime | str, updated_at: datetime | str) -> tuple[Any, ...]:
    """The row the orders projection writes for this folded order, in `COLUMNS` order."""
    # row_params builds its dict in COLUMNS order (COLUMNS is taken from it).
    return tuple(_row_params(state, created_at, updated_at).values())


class OrdersBuilder:
    """Folds the log chunk by chunk; hands over the rows of orders that ended."""

    tables: Sequence[str] = (TABLE,)
    columns: ClassVar[dict[str, Sequence[str]]] = {TABLE: COLUMNS}

    def __init__(self) -> None:
        # stream -> [state, recorded_at of its first event, of its last]; only orders still open
        self._open: dict[str, list[Any]] = {}
        self._foreign: set[str] = set()

    def feed(self, rows: list[LogRow]) -> dict[str, list[tuple[Any, ...]]]:
        done: list[tuple[Any, ...]] = []
        open_orders, start, fold_one, terminal = self._open, self._start, evolve, TERMINAL  # the hot loop
        for stream_id, version, recorded_at, event in rows:
            folding = open_orders.get(stream_id)
            if folding is None:
                folding = start(stream_id, version, recorded_at)
                if folding is None:
                    continue
            try:
                state = fold_one(folding[0], event)
            except InvalidTransition as exc:
                self._give_up(stream_id, version, str(exc))
                continue
            if state.status in terminal:
                done.append(order_row(state, folding[1], recorded_at))
                del open_orders[stream_id]
            else:
                folding[0] = state
                folding[2] = recorded_at
        return {TABLE: done}

    def _start(self, stream_id: str, version: int, recorded_at: str) -> list[Any] | None:
        if stream_id in self._foreign:
            return None
        if not is_order_id(stream_id):
            # As the live projection does: not an order the API created, left out.
            log.warning(
                "orders rebuild skipped a stream that is not an order id", extra={"stream": stream_id}
            )
            self._foreign.add(stream_id)
            return None
        if version != 1:
            self._give_up(stream_id, version, "follows no open order (an event after it ended?)")
            return None
        folding: list[Any] = [OrderState(), recorded_at, recorded_at]
        self._open[stream_id] = folding
        return folding

    def _give_up(self, stream_id: str, version: int, reason: str) -> None:
        """A stream the fold refuses: the rebuild stops (`unfoldable` raises); a caller that
        overrides `unfoldable` to carry on gets no row for the stream."""
        self._open.pop(stream_id, None)
        self._foreign.add(stream_id)
        self.unfoldable(stream_id, version, reason)

    def unfoldable(self, stream_id: str, version: int, reason: str) -> None:
        raise UnfoldableLog(f"order {stream_id}, version {version}: {reason}")

    def finish(self) -> dict[str, list[tuple[Any, ...]]]:
        """The rows of the orders still open at the end of the scan."""
        rows = [order_row(state, created, updated) for state, created, updated in self._open.values()]
        self._open.clear()
        return {TABLE: rows}

    async def after_load(self, conn: AsyncConnection[Any], shadow: dict[str, str]) -> None:
        """Nothing to derive: the rows are the table."""


async def catch_up(conn: AsyncConnection[Any], shadow: dict[str, str], events: list[RecordedEvent]) -> None:
    """Bring a shadow `orders` table up to `events[-1]`, as `apply_batch` brings the live one:
    re-fold each touched order from the log and replace its row. Counts no metrics."""
    streams = sorted({e.stream_id for e in events if is_order_id(e.stream_id)})
    if not streams:
        return
    cur = await conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY(%s) AND position <= %s"
        " ORDER BY stream_id, version",
        (streams, events[-1].position),
    )
    by_stream: dict[str, list[RecordedEvent]] = {}
    for row in await cur.fetchall():
        recorded = row_to_recorded(row)
        by_stream.setdefault(recorded.stream_id, []).append(recorded)
    rows = []
    for stream_id, history in by_stream.items():
        try:
            state = fold(r.event for r in history)
        except InvalidTransition as exc:
            raise UnfoldableLog(f"order {stream_id}: {exc}") from None
        rows.append(order_row(state, history[0].recorded_at, history[-1].recorded_at))
    table = sql.Identifier(shadow[TABLE])
    await conn.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s::uuid[])").format(table), (streams,))
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        table, sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    async with conn.cursor().copy(copy_sql) as copy:
        for r in rows:
            await copy.write_row(r)

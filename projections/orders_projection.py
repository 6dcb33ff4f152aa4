"""The `orders` read model (db/migrations/0002_orders_read_model.sql).

For each batch it folds the touched orders with the domain's own `evolve`, from the
state it folded for them last (or, when it has none that the batch follows, from
their whole stream in the log) and upserts the result, so the read model is by
construction what the log says (the property `audit` checks).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
from psycopg import AsyncConnection

from adapters import metrics
from adapters.postgres_event_store import EVENT_COLUMNS, row_to_recorded
from domain.errors import InvalidTransition
from domain.events import OrderConfirmed, OrderFailed, OrderPending, RetryScheduled
from domain.order import OrderState, evolve, fold
from domain.ports import RecordedEvent

NAME = "orders"

log = logging.getLogger("orderengine.projection")

# The order lifecycle metrics are counted here, where every event is applied: this is
# the one place that sees each event exactly once whoever wrote it (API, worker or a
# scheduler job), with the re-folded order at hand (type, DEX) and the log's own
# timestamps for the end-to-end latency. Counting in the writers instead would need a
# hook in each of them and care to skip a redelivered command that appended nothing.
# What it costs: counts follow the projection's lag, and a batch whose transaction fails
# after they were taken (the checkpoint write or the commit) is counted again when it is
# retried; resetting the checkpoint to rebuild the read model would re-count history.


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_encoder = msgspec.json.Encoder(decimal_format="string")

# The version of this projection's code: raise it when a change alters what rows hold,
# and the scheduler rebuilds the table from the log (projections/rebuild.py).
# 1: the first; 2: explorer_url, cancel_reason, cancelled_by (migration 0009).
VERSION = 2

_UPSERT = """
INSERT INTO orders (id, user_id, order_type, token_in, token_out, amount, limit_price,
    slippage_tolerance, status, created_at, updated_at, attempts, last_error, chosen_dex,
    chosen_quote, quotes, expected_out, min_out, executed_price, amount_out, tx_hash, version,
    expires_at, best_price, explorer_url, cancel_reason, cancelled_by)
VALUES (%(id)s, %(user_id)s, %(order_type)s, %(token_in)s, %(token_out)s, %(amount)s,
    %(limit_price)s, %(slippage_tolerance)s, %(status)s, %(created_at)s, %(updated_at)s,
    %(attempts)s, %(last_error)s, %(chosen_dex)s, %(chosen_quote)s::jsonb, %(quotes)s::jsonb,
    %(expected_out)s, %(min_out)s, %(executed_price)s, %(amount_out)s, %(tx_hash)s, %(version)s,
    %(expires_at)s, %(best_price)s, %(explorer_url)s, %(cancel_reason)s, %(cancelled_by)s)
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status, updated_at = EXCLUDED.updated_at, attempts = EXCLUDED.attempts,
    last_error = EXCLUDED.last_error, chosen_dex = EXCLUDED.chosen_dex,
    chosen_quote = EXCLUDED.chosen_quote, quotes = EXCLUDED.quotes,
    expected_out = EXCLUDED.expected_out, min_out = EXCLUDED.min_out,
    executed_price = EXCLUDED.executed_price, amount_out = EXCLUDED.amount_out,
    tx_hash = EXCLUDED.tx_hash, version = EXCLUDED.version, best_price = EXCLUDED.best_price,
    explorer_url = EXCLUDED.explorer_url, cancel_reason = EXCLUDED.cancel_reason,
    cancelled_by = EXCLUDED.cancelled_by
WHERE orders.version < EXCLUDED.version
"""


def row_params(state: OrderState, history: list[RecordedEvent]) -> dict[str, Any]:
    return row_params_at(state, history[0].recorded_at, history[-1].recorded_at)


def row_params_at(state: OrderState, created_at: Any, updated_at: Any) -> dict[str, Any]:
    """The row of the folded order; `created_at`, `updated_at`: its first and last events' times."""
    chosen = state.chosen_quote
    return {
        "id": state.order_id,
        "user_id": state.user_id,
        "order_type": state.order_type,
        "token_in": state.token_in,
        "token_out": state.token_out,
        "amount": state.amount,
        "limit_price": state.limit_price,
        "slippage_tolerance": state.slippage_tolerance,
        "status": state.status,
        "created_at": created_at,
        "updated_at": updated_at,
        "attempts": state.attempts,
        "last_error": state.last_error,
        "chosen_dex": state.chosen_dex,
        "chosen_quote": _encoder.encode(chosen).decode() if chosen else None,
        "quotes": _encoder.encode(state.quotes).decode() if state.quotes else None,
        "expected_out": state.expected_out,
        "min_out": state.min_out,
        "executed_price": state.executed_price,
        "amount_out": state.amount_out,
        "tx_hash": state.tx_hash,
        "version": state.version,
        "expires_at": state.expires_at,
        "best_price": state.best_price,
        "explorer_url": state.explorer_url,
        "cancel_reason": state.cancel_reason,
        "cancelled_by": state.cancelled_by,
    }


class _Folded(NamedTuple):
    state: OrderState
    created_at: datetime  # its first event's recorded_at
    updated_at: datetime  # its last event's


# The orders this process's follower folded last, so that a batch evolves each touched
# order by its new events instead of re-reading and re-folding its stream. Only a cache of
# the log: an event that does not follow the cached version (another follower applied some
# meanwhile, a checkpoint moved back) sends its order back to the log for a full fold.
_FOLDED: dict[str, _Folded] = {}
_FOLDED_MAX = 100_000


async def apply_batch(conn: AsyncConnection[Any], events: list[RecordedEvent]) -> None:
    touched: dict[str, _Folded] = {}
    reread: set[str] = set()
    for e in events:
        stream_id = e.stream_id
        if stream_id in reread:
            continue
        current = touched.get(stream_id) or _FOLDED.get(stream_id)
        if current is None and e.version == 1:
            current = _Folded(OrderState(), e.recorded_at, e.recorded_at)
        if current is None or current.state.version != e.version - 1:
            reread.add(stream_id)
            continue
        try:
            state = evolve(current.state, e.event)
        except InvalidTransition:
            reread.add(stream_id)  # folded from the log below, which says what is wrong
            continue
        touched[stream_id] = _Folded(state, current.created_at, e.recorded_at)
    for stream_id in reread:
        touched.pop(stream_id, None)
    if reread:
        touched.update(await _fold_from_log(conn, sorted(reread), events[-1].position))
    params = []
    for stream_id, folded in touched.items():
        if not _is_uuid(stream_id):
            # Not an order the API created (orders are UUIDs): skip it rather than let
            # one foreign stream stop the read model for everyone.
            log.warning(
                "orders projection skipped a stream that is not an order id", extra={"stream": stream_id}
            )
            continue
        params.append(row_params_at(folded.state, folded.created_at, folded.updated_at))
    if params:
        async with conn.cursor() as c:
            await c.executemany(_UPSERT, params)
    # Counted last, once the rows are written: a failed upsert counts nothing.
    for e in events:
        folded = touched.get(e.stream_id)
        if folded is not None and _is_uuid(e.stream_id):
            count_lifecycle(e, folded.state, folded.created_at)
    _remember(touched)


def _remember(touched: dict[str, _Folded]) -> None:
    if len(_FOLDED) > _FOLDED_MAX:
        _FOLDED.clear()
    for stream_id, folded in touched.items():
        if folded.state.is_terminal:
            _FOLDED.pop(stream_id, None)  # a finished order records nothing more
        else:
            _FOLDED[stream_id] = folded


async def _fold_from_log(conn: AsyncConnection[Any], streams: list[str], upto: int) -> dict[str, _Folded]:
    cur = await conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY(%s) AND position <= %s"
        " ORDER BY stream_id, version",
        (streams, upto),
    )
    by_stream: dict[str, list[RecordedEvent]] = {}
    for row in await cur.fetchall():
        rec = row_to_recorded(row)
        by_stream.setdefault(rec.stream_id, []).append(rec)
    return {
        stream_id: _Folded(fold(r.event for r in history), history[0].recorded_at, history[-1].recorded_at)
        for stream_id, history in by_stream.items()
    }


def count_lifecycle(recorded: RecordedEvent, state: OrderState, placed_at: datetime) -> None:
    """Update the lifecycle metrics for one newly applied event of the order `state`."""
    event = recorded.event
    if isinstance(event, OrderPending):
        metrics.ORDERS_ACCEPTED.labels(order_type=event.order_type).inc()
    elif isinstance(event, OrderConfirmed):
        metrics.ORDERS_CONFIRMED.labels(order_type=state.order_type, dex=state.chosen_dex or "unknown").inc()
        seconds = (recorded.recorded_at - placed_at).total_seconds()
        metrics.ORDER_LATENCY.labels(order_type=state.order_type).observe(max(seconds, 0.0))
    elif isinstance(event, OrderFailed):
        metrics.ORDERS_FAILED.labels(order_type=state.order_type, step=event.step).inc()
    elif isinstance(event, RetryScheduled):
        metrics.RETRIES.labels(step=event.step).inc()

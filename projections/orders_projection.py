"""The `orders` read model (db/migrations/0002_orders_read_model.sql).

For each batch it re-folds the touched orders' streams with the domain's own
`fold` and upserts the result, so the read model is by construction what the
log says (the property `audit` will check).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters import metrics
from adapters.postgres_event_store import EVENT_COLUMNS, row_to_recorded
from domain.events import OrderConfirmed, OrderFailed, OrderPending, RetryScheduled
from domain.order import OrderState, fold
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
        "created_at": history[0].recorded_at,
        "updated_at": history[-1].recorded_at,
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


async def apply_batch(conn: AsyncConnection[Any], events: list[RecordedEvent]) -> None:
    streams = sorted({e.stream_id for e in events})
    upto = events[-1].position
    cur = await conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY(%s) AND position <= %s"
        " ORDER BY stream_id, version",
        (streams, upto),
    )
    by_stream: dict[str, list[RecordedEvent]] = {}
    for row in await cur.fetchall():
        rec = row_to_recorded(row)
        by_stream.setdefault(rec.stream_id, []).append(rec)
    params = []
    folded: dict[str, tuple[OrderState, RecordedEvent]] = {}
    for stream_id, history in by_stream.items():
        if not _is_uuid(stream_id):
            # Not an order the API created (orders are UUIDs): skip it rather than let
            # one foreign stream stop the read model for everyone.
            log.warning(
                "orders projection skipped a stream that is not an order id", extra={"stream": stream_id}
            )
            continue
        state = fold(r.event for r in history)
        params.append(row_params(state, history))
        folded[stream_id] = (state, history[0])
    async with conn.cursor() as c:
        await c.executemany(_UPSERT, params)
    # Counted last, once the rows are written: a failed upsert counts nothing.
    for e in events:
        if e.stream_id in folded:
            count_lifecycle(e, *folded[e.stream_id])


def count_lifecycle(recorded: RecordedEvent, state: OrderState, placed: RecordedEvent) -> None:
    """Update the lifecycle metrics for one newly applied event of the order `state`."""
    event = recorded.event
    if isinstance(event, OrderPending):
        metrics.ORDERS_ACCEPTED.labels(order_type=event.order_type).inc()
    elif isinstance(event, OrderConfirmed):
        metrics.ORDERS_CONFIRMED.labels(order_type=state.order_type, dex=state.chosen_dex or "unknown").inc()
        seconds = (recorded.recorded_at - placed.recorded_at).total_seconds()
        metrics.ORDER_LATENCY.labels(order_type=state.order_type).observe(max(seconds, 0.0))
    elif isinstance(event, OrderFailed):
        metrics.ORDERS_FAILED.labels(order_type=state.order_type, step=event.step).inc()
    elif isinstance(event, RetryScheduled):
        metrics.RETRIES.labels(step=event.step).inc()

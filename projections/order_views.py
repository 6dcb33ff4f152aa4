"""Read queries over the `orders` projection, shaped for clients (camelCase).

If the projection has not caught up with a just-accepted order, the view is
folded from the log instead: the log is the truth, the table a cache of it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import PostgresEventStore
from domain.order import fold
from projections.orders_projection import row_params

_FIELDS = {
    "id": "orderId",
    "user_id": "userId",
    "order_type": "orderType",
    "token_in": "tokenIn",
    "token_out": "tokenOut",
    "amount": "amount",
    "limit_price": "limitPrice",
    "slippage_tolerance": "slippageTolerance",
    "status": "status",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "attempts": "attempts",
    "last_error": "lastError",
    "chosen_dex": "chosenDex",
    "chosen_quote": "chosenQuote",
    "quotes": "quotes",
    "expected_out": "expectedOut",
    "min_out": "minOut",
    "executed_price": "executedPrice",
    "amount_out": "amountOut",
    "tx_hash": "txHash",
    "version": "version",
    "expires_at": "expiresAt",
    "best_price": "bestPrice",
}

_QUOTE_KEYS = {"expected_out": "expectedOut"}


def _client_value(key: str, value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if key in {"chosen_quote", "quotes"} and value is not None:
        if isinstance(value, str):
            value = msgspec.json.decode(value)
        if isinstance(value, dict):
            return {_QUOTE_KEYS.get(k, k): v for k, v in value.items()}
        return [{_QUOTE_KEYS.get(k, k): v for k, v in q.items()} for q in value]
    return value


def to_view(row: dict[str, Any]) -> dict[str, Any]:
    return {_FIELDS[k]: _client_value(k, row[k]) for k in _FIELDS}


async def find_order(
    pool: AsyncConnectionPool[AsyncConnection[Any]], store: PostgresEventStore, order_id: str
) -> dict[str, Any] | None:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(f"SELECT {', '.join(_FIELDS)} FROM orders WHERE id = %s", (order_id,))
        row = await cur.fetchone()
    if row is not None:
        row["id"] = str(row["id"])
        return to_view(row)
    history = await store.read_stream(order_id)
    if not history:
        return None
    return to_view(row_params(fold(r.event for r in history), history))


async def waiting_orders(
    pool: AsyncConnectionPool[AsyncConnection[Any]], limit: int = 1000, token: str | None = None
) -> list[tuple[str, str]]:
    """(id, order_type) of waiting orders, oldest first; with `token`, only those trading it."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, order_type FROM orders WHERE status = 'waiting'"
            " AND (%(token)s::text IS NULL OR token_in = %(token)s OR token_out = %(token)s)"
            " ORDER BY updated_at LIMIT %(limit)s",
            {"token": token, "limit": limit},
        )
        return [(str(r[0]), str(r[1])) for r in await cur.fetchall()]


async def due_for_expiry(
    pool: AsyncConnectionPool[AsyncConnection[Any]], now: datetime, limit: int = 1000
) -> list[str]:
    """Orders not yet executing whose expiry has passed."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM orders WHERE status IN ('pending', 'waiting') AND expires_at <= %s"
            " ORDER BY expires_at LIMIT %s",
            (now, limit),
        )
        return [str(r[0]) for r in await cur.fetchall()]


async def stuck_orders(
    pool: AsyncConnectionPool[AsyncConnection[Any]], older_than: datetime, limit: int = 1000
) -> list[tuple[str, str, int, str]]:
    """(id, status, version, order_type) of executing orders whose last event is older than `older_than`."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, status, version, order_type FROM orders"
            " WHERE status IN ('pending', 'routing', 'building', 'submitted') AND updated_at < %s"
            " ORDER BY updated_at LIMIT %s",
            (older_than, limit),
        )
        return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in await cur.fetchall()]

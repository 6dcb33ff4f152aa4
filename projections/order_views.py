"""Read queries over the `orders` projection, shaped for clients (camelCase).

If the projection has not caught up with a just-accepted order, the view is
folded from the log instead: the log is the truth, the table a cache of it.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import PostgresEventStore
from domain.events import OrderType
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
    "explorer_url": "explorerUrl",
    "cancel_reason": "cancelReason",
    "cancelled_by": "cancelledBy",
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


class PostgresOrderFinder:
    """The `OrderFinder` port over the `orders` read model (the scheduler's jobs)."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
        self.pool = pool

    async def waiting(self, token: str | None = None, limit: int = 1000) -> list[tuple[str, OrderType]]:
        return [
            (order_id, cast(OrderType, kind))
            for order_id, kind in await waiting_orders(self.pool, limit, token)
        ]

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[str]:
        return await due_for_expiry(self.pool, now, limit)

    async def stuck(self, older_than: datetime, limit: int = 1000) -> list[tuple[str, str, int, OrderType]]:
        return [
            (order_id, status, version, cast(OrderType, kind))
            for order_id, status, version, kind in await stuck_orders(self.pool, older_than, limit)
        ]


def encode_cursor(created_at: datetime, order_id: str) -> str:
    """An opaque position in the newest-first listing."""
    raw = f"{created_at.isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError for anything `encode_cursor` did not produce."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, order_id = raw.split("|", 1)
        return datetime.fromisoformat(created), str(uuid.UUID(order_id))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValueError("cursor is not one this API gave out") from None


async def list_orders(
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    *,
    user_id: str | None,
    status: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Orders newest first, filtered; returns the page and the cursor of the next one."""
    conditions, params = [], []
    if user_id is not None:
        conditions.append("user_id = %s")
        params.append(user_id)
    if status is not None:
        conditions.append("status = %s")
        params.append(status)
    if after is not None:
        conditions.append("(created_at, id) < (%s, %s)")
        params.extend(after)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            f"SELECT {', '.join(_FIELDS)} FROM orders {where} ORDER BY created_at DESC, id DESC LIMIT %s",
            (*params, limit + 1),
        )
        rows = await cur.fetchall()
    page = rows[:limit]
    for row in page:
        row["id"] = str(row["id"])
    cursor = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None
    return [to_view(r) for r in page], cursor

"""Read queries over the `stats` projection, shaped for clients (camelCase).

Volumes are per pair only: a user's totals add up counts and times, never amounts
of different tokens. `successRate` is confirmed / (confirmed + failed): of the
orders whose execution ended, how many the engine completed (a cancelled or
expired order is the user's or the market's doing, not an execution that
failed); null until one has ended so. `avgExecutionSeconds` is the mean time
from pending to confirmed by the log's timestamps, over confirmed orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from domain.order import TRANSITIONS

Pool = AsyncConnectionPool[AsyncConnection[Any]]

# Every status an order can have, in lifecycle order ("new" is only before the first event).
STATUSES: tuple[str, ...] = tuple(status for status in TRANSITIONS if status != "new")
# Sums of amounts stay exact far beyond the 28 digits of Python's default context.
_PRECISION = 100

_SUMS = "orders, amount_in, amount_out, execution_seconds"


def _text(value: Decimal) -> str:
    """A decimal as plain digits without trailing zeros (1.50 + 2.0 reads 3.5, not 3.50)."""
    with localcontext(prec=_PRECISION):
        text = format(value.normalize(), "f")
    return text


def _figures(rows: Iterable[tuple[str, int, Decimal, Decimal, Decimal]]) -> dict[str, Any]:
    """Counts, success rate and mean execution time over (status, orders, amount in,
    amount out, execution seconds) rows."""
    by_status = dict.fromkeys(STATUSES, 0)
    seconds = Decimal(0)
    with localcontext(prec=_PRECISION):
        for status, orders, _, _, execution_seconds in rows:
            by_status[status] = by_status.get(status, 0) + int(orders)
            seconds += execution_seconds
    confirmed, failed = by_status["confirmed"], by_status["failed"]
    return {
        "orders": sum(by_status.values()),
        "byStatus": by_status,
        "successRate": confirmed / (confirmed + failed) if confirmed + failed else None,
        "avgExecutionSeconds": float(seconds / confirmed) if confirmed else None,
    }


def _pair(
    token_in: str, token_out: str, rows: list[tuple[str, int, Decimal, Decimal, Decimal]]
) -> dict[str, Any]:
    with localcontext(prec=_PRECISION):
        requested = sum((r[2] for r in rows), Decimal(0))
        executed_in = sum((r[2] for r in rows if r[0] == "confirmed"), Decimal(0))
        executed_out = sum((r[3] for r in rows if r[0] == "confirmed"), Decimal(0))
    return {
        "tokenIn": token_in,
        "tokenOut": token_out,
        **_figures(rows),
        "requestedVolumeIn": _text(requested),
        "executedVolumeIn": _text(executed_in),
        "executedVolumeOut": _text(executed_out),
    }


def _pairs(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """(token_in, token_out, status, sums…) rows, grouped into one view per pair, sorted."""
    grouped: dict[tuple[str, str], list[tuple[str, int, Decimal, Decimal, Decimal]]] = {}
    for token_in, token_out, status, *sums in rows:
        grouped.setdefault((token_in, token_out), []).append((status, *sums))
    return [
        _pair(token_in, token_out, grouped[token_in, token_out]) for token_in, token_out in sorted(grouped)
    ]


async def user_stats(pool: Pool, user_id: str) -> dict[str, Any] | None:
    """The user's statistics, or None if the projection has no order of theirs."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT token_in, token_out, status, {_SUMS} FROM stats_user_pairs WHERE user_id = %s",
            (user_id,),
        )
        rows = await cur.fetchall()
    if not rows:
        return None
    return {"userId": user_id, **_figures(r[2:] for r in rows), "pairs": _pairs(rows)}


async def pair_stats(
    pool: Pool, token_in: str | None = None, token_out: str | None = None
) -> list[dict[str, Any]]:
    """Every pair's statistics over all users (or the one pair asked for)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT token_in, token_out, status, {_SUMS} FROM stats_pairs"
            " WHERE (%(in)s::text IS NULL OR token_in = %(in)s)"
            " AND (%(out)s::text IS NULL OR token_out = %(out)s)",
            {"in": token_in, "out": token_out},
        )
        return _pairs(await cur.fetchall())

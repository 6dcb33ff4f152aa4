"""`projections.audit` on the statistics read model, against a real Postgres: a clean log and
projections audit clean, each kind of hand edit to the stats tables is reported where it was
made, and a stats projection that merely lags the orders projection is not a divergence.
(The orders-table and event checks are covered end to end in tests/e2e/test_operator_cli.py.)"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from psycopg import AsyncConnection

from projections import orders_projection, stats_projection
from projections.audit import AuditReport, audit
from projections.log_follower import LogFollower
from tests.benchmarks.rebuild import write_log
from tests.integration.order_logs import HANDLERS, Pool, follow_all, mixed_orders

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def run_audit(url: str) -> AuditReport:
    async with await AsyncConnection.connect(url) as conn:
        return await audit(conn)


async def one_row(pool: Pool, query: str) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return tuple(row)


async def test_each_hand_edit_of_the_statistics_is_found(own_pool: Pool, own_database_url: str) -> None:
    write_log(own_database_url, mixed_orders(200, seed=11))
    await follow_all(own_pool)
    clean = await run_audit(own_database_url)
    assert clean.divergences == []
    orders = (await one_row(own_pool, "SELECT count(*) FROM orders"))[0]
    assert clean.rows_compared == clean.stats_rows_compared == orders > 100

    edited, removed = (
        str(r[0])
        for r in [
            await one_row(own_pool, "SELECT order_id FROM stats_orders WHERE status = 'confirmed' LIMIT 1"),
            await one_row(own_pool, "SELECT order_id FROM stats_orders WHERE status = 'failed' LIMIT 1"),
        ]
    )
    user, t_in, t_out, status = await one_row(
        own_pool,
        "SELECT user_id, token_in, token_out, status FROM stats_user_pairs ORDER BY 1, 2, 3, 4 LIMIT 1",
    )
    gone = await one_row(
        own_pool, "SELECT token_in, token_out, status FROM stats_pairs ORDER BY 1, 2, 3 LIMIT 1"
    )
    extra = str(uuid.uuid4())
    async with own_pool.connection() as conn:
        await conn.execute("UPDATE stats_orders SET amount = amount + 1 WHERE order_id = %s", (edited,))
        await conn.execute("DELETE FROM stats_orders WHERE order_id = %s", (removed,))
        await conn.execute(
            "INSERT INTO stats_orders SELECT %s, user_id, token_in, token_out, status, amount, amount_out,"
            " placed_at, execution_seconds, version FROM stats_orders WHERE order_id = %s",
            (extra, edited),
        )
        await conn.execute(
            "UPDATE stats_user_pairs SET orders = orders + 5"
            " WHERE user_id = %s AND token_in = %s AND token_out = %s AND status = %s",
            (user, t_in, t_out, status),
        )
        await conn.execute(
            "DELETE FROM stats_pairs WHERE token_in = %s AND token_out = %s AND status = %s", gone
        )

    found = (await run_audit(own_database_url)).divergences
    per_order = {(d.kind, d.order_id, d.field) for d in found if d.kind != "stats_sum"}
    assert per_order == {
        ("stats_field", edited, "amount"),
        ("stats_missing_row", removed, None),
        ("stats_extra_row", extra, None),
    }
    amount = next(d for d in found if d.kind == "stats_field")
    assert amount.read_model_value == str(Decimal(amount.log_value) + 1)

    sums = {(d.order_id, d.field): d for d in found if d.kind == "stats_sum"}
    counted = sums[(f"stats_user_pairs[{user},{t_in},{t_out},{status}]", "orders")]
    assert counted.read_model_value == counted.log_value + 5
    dropped = [d for (where, _), d in sums.items() if where == f"stats_pairs[{','.join(gone)}]"]
    assert {d.field for d in dropped} == {"orders", "amount_in", "amount_out", "execution_seconds"}
    assert all(d.read_model_value is None and d.log_value is not None for d in dropped)
    # The edited, removed and extra rows no longer add up to the sums stored for their keys.
    assert any(where.startswith("stats_user_pairs[") and f == "amount_in" for where, f in sums)


async def test_a_stats_projection_behind_the_orders_projection_is_not_a_divergence(
    own_pool: Pool, own_database_url: str
) -> None:
    log = mixed_orders(150, seed=12)
    half = len(log) // 2  # orders open at the cut carry on in the second half
    write_log(own_database_url, log[:half])
    await follow_all(own_pool)
    write_log(own_database_url, log[half:])
    orders = LogFollower(own_pool, orders_projection.NAME, HANDLERS[orders_projection.NAME], batch_size=50)
    while await orders.step():
        pass

    behind = await run_audit(own_database_url)
    assert behind.divergences == []
    assert behind.stats_checkpoint < behind.checkpoint and behind.events == len(log)

    stats = LogFollower(own_pool, stats_projection.NAME, HANDLERS[stats_projection.NAME], batch_size=50)
    while await stats.step():
        pass
    caught_up = await run_audit(own_database_url)
    assert caught_up.divergences == [] and caught_up.stats_checkpoint == caught_up.checkpoint
    assert caught_up.stats_rows_compared > behind.stats_rows_compared

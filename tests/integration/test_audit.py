"""`projections.audit` on the statistics read model, against a real Postgres: a clean log and
projections audit clean, each kind of hand edit to the stats tables is reported where it was
made, and a stats projection that merely lags the orders projection is not a divergence.
(The orders-table and event checks are covered end to end in tests/e2e/test_operator_cli.py.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import pytest

from adapters.database import Database
from db.migrate import MIGRATIONS_DIR
from projections import orders_projection, stats_projection
from projections.audit import KINDS, AuditReport, audit
from tests.benchmarks.simulated_log import write_log
from tests.integration.order_logs import HANDLERS, Pool, follow_all, follower, mixed_orders

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def run_audit(url: str) -> AuditReport:
    report = await audit(Database(url))
    assert {d.kind for d in report.divergences} <= set(KINDS)  # each one documented in docs/operations.md
    return report


async def one_row(pool: Pool, query: str, *params: Any) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        row = await (await conn.execute(query, params or None)).fetchone()
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
    orders = follower(own_pool, orders_projection.NAME, batch_size=50)
    while await orders.step():
        pass

    behind = await run_audit(own_database_url)
    assert behind.divergences == []
    assert behind.stats_checkpoint < behind.checkpoint and behind.events == len(log)

    stats = follower(own_pool, stats_projection.NAME, batch_size=50)
    while await stats.step():
        pass
    caught_up = await run_audit(own_database_url)
    assert caught_up.divergences == [] and caught_up.stats_checkpoint == caught_up.checkpoint
    assert caught_up.stats_rows_compared > behind.stats_rows_compared


async def test_since_audits_only_the_orders_with_an_event_at_or_after_it(
    own_pool: Pool, own_database_url: str
) -> None:
    write_log(own_database_url, mixed_orders(200, seed=13))
    await follow_all(own_pool)
    since = (await one_row(own_pool, "SELECT min(recorded_at) + interval '3 seconds' FROM events"))[0]
    grouped = "SELECT stream_id FROM events GROUP BY stream_id HAVING {} LIMIT 1"
    (early,) = await one_row(own_pool, grouped.format("max(recorded_at) < %s"), since)
    (late,) = await one_row(own_pool, grouped.format("min(recorded_at) >= %s"), since)
    async with own_pool.connection() as conn:
        for order_id in (early, late):
            await conn.execute("UPDATE orders SET last_error = 'edited' WHERE id = %s", (order_id,))
    (in_scope,) = await one_row(
        own_pool, "SELECT count(DISTINCT stream_id) FROM events WHERE recorded_at >= %s", since
    )

    scoped = await audit(Database(own_database_url), since=since)
    assert scoped.streams == scoped.rows_compared == in_scope < 200
    assert [(d.kind, d.order_id, d.field) for d in scoped.divergences] == [("field", late, "last_error")]
    everything = await run_audit(own_database_url)
    assert {d.order_id for d in everything.divergences} == {early, late}


async def test_a_gap_and_an_event_after_the_end_are_reported_and_the_audit_carries_on(
    own_pool: Pool, own_database_url: str
) -> None:
    write_log(own_database_url, mixed_orders(100, seed=14))
    await follow_all(own_pool)
    confirmed = "SELECT order_id::text, version FROM stats_orders WHERE status = 'confirmed' ORDER BY 1"
    gapped, _ = await one_row(own_pool, confirmed)
    ended, last = await one_row(own_pool, confirmed + " OFFSET 1")
    async with own_pool.connection() as conn:
        await conn.execute("DELETE FROM events WHERE stream_id = %s AND version = 3", (gapped,))
        # A routing event after the order was confirmed: no fold can take it.
        await conn.execute(
            "INSERT INTO events (stream_id, version, type, data, metadata, recorded_at)"
            " SELECT stream_id, %s, type, data, metadata, now()"
            " FROM events WHERE stream_id = %s AND type = 'OrderRouting' LIMIT 1",
            (last + 1, ended),
        )
        # The projections "applied" it (as a buggy follower would have).
        await conn.execute("UPDATE projection_checkpoints SET position = (SELECT max(position) FROM events)")

    found = (await run_audit(own_database_url)).divergences
    kinds = {(d.kind, d.order_id, d.version) for d in found if d.order_id in (gapped, ended)}
    assert ("version_gap", gapped, 4) in kinds
    assert ("hash_mismatch", gapped, 4) in kinds  # its predecessor in the chain is gone
    assert ("unfoldable", ended, last + 1) in kinds
    gap = next(d for d in found if d.kind == "version_gap")
    assert gap.detail == "version 3 missing before version 4"


async def test_migrations_0009_and_0010_bring_rows_projected_before_them_to_version_2(
    own_pool: Pool, own_database_url: str
) -> None:
    write_log(own_database_url, mixed_orders(150, seed=15))
    await follow_all(own_pool)
    async with own_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE explorer_url IS NOT NULL), count(*) FILTER (WHERE cancelled_by"
            " IS NOT NULL) FROM orders"
        )
        projected = await cur.fetchone()
        # The columns as 0009 found them on a database projected before it.
        await conn.execute("UPDATE orders SET explorer_url = NULL, cancel_reason = NULL, cancelled_by = NULL")
        await conn.execute("UPDATE projection_checkpoints SET version = 1 WHERE name = 'orders'")
    assert projected is not None and projected[0] > 50 and projected[1] > 0
    stale = await run_audit(own_database_url)
    assert {d.field for d in stale.divergences} == {"explorer_url", "cancel_reason", "cancelled_by"}
    assert stale.outdated == ["orders"]  # explained: version 1 of the projection built them

    async with own_pool.connection() as conn:
        for migration in ("0009_orders_links_and_cancellation", "0010_projection_versions"):
            await conn.execute(MIGRATIONS_DIR.joinpath(f"{migration}.sql").read_text())
    migrated = await run_audit(own_database_url)
    assert migrated.divergences == [] and migrated.outdated == []


async def test_an_audit_while_orders_are_appended_and_projected_finds_nothing(
    own_pool: Pool, own_database_url: str
) -> None:
    """The audit's connections share one snapshot: rows, checkpoints and events that move
    on meanwhile never show up as divergences."""
    start = datetime(2026, 11, 24, tzinfo=UTC)
    batches = [mixed_orders(40, seed=100 + i, start=start + timedelta(minutes=i)) for i in range(12)]
    write_log(own_database_url, batches[0])
    await follow_all(own_pool)
    writing = True

    async def append() -> None:
        nonlocal writing
        for batch in batches[1:]:
            await anyio.to_thread.run_sync(write_log, own_database_url, batch)
        writing = False

    async def project() -> None:
        followers = [follower(own_pool, name, batch_size=25) for name in HANDLERS]
        while writing:
            for each in followers:
                await each.step()
            await anyio.sleep(0)

    reports: list[AuditReport] = []

    async def audit_meanwhile() -> None:
        while writing:
            reports.append(await run_audit(own_database_url))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(append)
        tasks.start_soon(project)
        tasks.start_soon(audit_meanwhile)
    await follow_all(own_pool)
    reports.append(await run_audit(own_database_url))
    assert len(reports) >= 2 and all(r.divergences == [] for r in reports)
    assert reports[-1].events == sum(map(len, batches)) and reports[0].events < reports[-1].events
    assert any(0 < r.stats_checkpoint < reports[-1].stats_checkpoint for r in reports[:-1])

"""The stats projection against a real Postgres: the numbers of a known scenario, counts moving
between statuses, exactly-once application across a crash inside a batch (for it and for the
orders projection), and re-application changing nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import read_all
from domain.commands import (
    BuildTransaction,
    CancelOrder,
    PlaceOrder,
    RecordConfirmation,
    RecordSubmission,
    RequestSwap,
    RouteOrder,
)
from domain.order import fold
from projections import orders_projection, stats_projection
from projections.log_follower import LogFollower, read_checkpoint
from projections.stats_views import user_stats
from tests.benchmarks.simulated_log import OrderDriver, Recorded, write_log
from tests.factories import new_order_id, quotes
from tests.integration.order_logs import VERSIONS

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Pool = AsyncConnectionPool[AsyncConnection[Any]]
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def order(
    user: str, token_in: str, token_out: str, amount: str, end: str, seconds: float = 2.0
) -> list[Recorded]:
    """One order placed at T0 by `user`, taken to `end`: "pending", "routing", "confirmed"
    (at T0 + `seconds`), "failed" (slippage at confirm) or "cancelled"."""
    oid = new_order_id()
    o = OrderDriver(oid, T0)
    o.do(
        PlaceOrder(
            command_id=f"{oid}:place",
            order_id=oid,
            user_id=user,
            order_type="market",
            token_in=token_in,
            token_out=token_out,
            amount=Decimal(amount),
            slippage_tolerance=Decimal("0.01"),
        ),
        "api",
        0,
    )
    if end == "cancelled":
        o.do(CancelOrder(command_id=f"{oid}:cancel"), "api", 10)
        return o.events
    if end == "pending":
        return o.events
    price = "150" if token_in == "SOL" else "0.0066"
    o.do(RouteOrder(command_id=f"{oid}:route", quotes=quotes(price, price)), "worker:route", 10)
    if end == "routing":
        return o.events
    o.do(BuildTransaction(command_id=f"{oid}:build"), "worker:build", 10)
    o.do(RequestSwap(command_id=f"{oid}:swap", idempotency_key=f"{oid}:swap"), "worker:submit", 10)
    o.do(RecordSubmission(command_id=f"{oid}:submit", tx_hash=f"tx-{oid}"), "worker:submit", 10)
    expected = o.state.expected_out or Decimal(0)
    out = expected if end == "confirmed" else expected / 2  # half: below minOut, so it fails
    o.at = T0 + timedelta(seconds=seconds)
    o.do(
        RecordConfirmation(
            command_id=f"{oid}:confirm", tx_hash=f"tx-{oid}", executed_price=Decimal(150), amount_out=out
        ),
        "worker:confirm",
        0,
    )
    assert o.state.status == end
    return o.events


async def follow(pool: Pool, name: str = stats_projection.NAME, batch_size: int = 3) -> None:
    """Run the projection's follower until it has applied everything, in small batches."""
    handler = stats_projection.apply_batch if name == stats_projection.NAME else orders_projection.apply_batch
    follower = LogFollower(pool, name, handler, version=VERSIONS[name], batch_size=batch_size)
    while await follower.step():
        pass


async def rows(pool: Pool, table: str, order_by: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT * FROM {table} ORDER BY {order_by}")
        return await cur.fetchall()


async def test_a_known_scenario_gives_known_numbers(own_pool: Pool, own_database_url: str) -> None:
    a = order("alice", "SOL", "USDC", "1.5", "confirmed", seconds=2)
    b = order("alice", "SOL", "USDC", "2.5", "confirmed", seconds=4)
    c = order("alice", "SOL", "USDC", "1", "failed")
    d = order("alice", "USDC", "SOL", "100", "cancelled")
    e = order("bob", "SOL", "USDC", "3", "routing")
    write_log(own_database_url, sorted(a + b + c + d + e, key=lambda r: r.at))
    await follow(own_pool)

    alice = await user_stats(own_pool, "alice")
    assert alice is not None
    out_a, out_b = a[-1].event.amount_out, b[-1].event.amount_out  # type: ignore[attr-defined]
    zero = dict.fromkeys(["pending", "waiting", "routing", "building", "submitted", "expired"], 0)
    assert {k: v for k, v in alice.items() if k != "pairs"} == {
        "userId": "alice",
        "orders": 4,
        "byStatus": {**zero, "confirmed": 2, "failed": 1, "cancelled": 1},
        "successRate": 2 / 3,
        "avgExecutionSeconds": 3.0,
    }
    sol_usdc, usdc_sol = alice["pairs"]
    assert (sol_usdc["tokenIn"], sol_usdc["tokenOut"], sol_usdc["orders"]) == ("SOL", "USDC", 3)
    assert (sol_usdc["requestedVolumeIn"], sol_usdc["executedVolumeIn"]) == ("5", "4")
    assert Decimal(sol_usdc["executedVolumeOut"]) == out_a + out_b
    assert (sol_usdc["successRate"], sol_usdc["avgExecutionSeconds"]) == (2 / 3, 3.0)
    assert usdc_sol["byStatus"]["cancelled"] == 1 and usdc_sol["requestedVolumeIn"] == "100"
    assert (usdc_sol["executedVolumeIn"], usdc_sol["successRate"], usdc_sol["avgExecutionSeconds"]) == (
        "0",
        None,
        None,
    )
    pair = await rows(own_pool, "stats_pairs", "token_in, token_out, status")
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in pair] == [
        ("SOL", "USDC", "confirmed", 2, Decimal("4.0")),
        ("SOL", "USDC", "failed", 1, Decimal("1")),
        ("SOL", "USDC", "routing", 1, Decimal("3")),
        ("USDC", "SOL", "cancelled", 1, Decimal("100")),
    ]
    assert await user_stats(own_pool, "nobody") is None


async def test_a_status_change_moves_the_count_and_empties_the_old_row(
    own_pool: Pool, own_database_url: str
) -> None:
    events = order("carol", "SOL", "USDC", "2", "confirmed")
    counts = []
    for i in range(len(events)):  # apply one event at a time, as the follower meets them
        write_log(own_database_url, events[i : i + 1])
        await follow(own_pool)
        counts.append([(r[3], r[4]) for r in await rows(own_pool, "stats_user_pairs", "status")])
    assert counts == [
        [("pending", 1)],
        [("routing", 1)],
        [("building", 1)],
        [("building", 1)],  # SwapRequested keeps the status
        [("submitted", 1)],
        [("confirmed", 1)],
    ]


async def test_reapplying_a_batch_changes_nothing(own_pool: Pool, own_database_url: str) -> None:
    write_log(
        own_database_url,
        order("dave", "SOL", "USDC", "1", "confirmed") + order("dave", "SOL", "USDC", "2", "routing"),
    )
    await follow(own_pool)
    before = [await rows(own_pool, t, "1, 2, 3") for t in stats_projection.TABLES]
    async with own_pool.connection() as conn:
        events = await read_all(conn, 0, 1000)
        async with conn.transaction():
            await stats_projection.apply_batch(conn, events)  # as two overlapping followers would
            await stats_projection.apply_batch(conn, events[3:])
    assert [await rows(own_pool, t, "1, 2, 3") for t in stats_projection.TABLES] == before


async def test_streams_that_are_not_orders_are_left_out(own_pool: Pool, own_database_url: str) -> None:
    foreign = [
        Recorded(r.at, "not-an-order", r.version, r.event, r.metadata)
        for r in order("erin", "SOL", "USDC", "1", "routing")
    ]
    write_log(own_database_url, foreign + order("erin", "SOL", "USDC", "1", "routing"))
    await follow(own_pool)
    erin = await user_stats(own_pool, "erin")
    assert erin is not None and erin["orders"] == 1


class Crash(Exception):
    pass


def crashing_after(handler: Any, applied: int) -> Any:
    """A handler that applies the first `applied` events of its batch, then dies."""

    async def handle(conn: AsyncConnection[Any], events: list[Any]) -> None:
        await handler(conn, events[:applied])
        raise Crash

    return handle


@pytest.mark.parametrize("projection", [stats_projection.NAME, orders_projection.NAME])
async def test_a_crash_inside_a_batch_applies_nothing_and_the_retry_applies_it_once(
    own_pool: Pool, own_database_url: str, projection: str
) -> None:
    first = order("frank", "SOL", "USDC", "1", "confirmed") + order("frank", "USDC", "SOL", "50", "cancelled")
    write_log(own_database_url, sorted(first, key=lambda r: r.at))
    await follow(own_pool, projection, batch_size=100)
    tables = stats_projection.TABLES if projection == stats_projection.NAME else ("orders",)
    before = [await rows(own_pool, t, "1, 2") for t in tables]
    async with own_pool.connection() as conn:
        checkpoint = await read_checkpoint(conn, projection)

    second = order("frank", "SOL", "USDC", "4", "confirmed", seconds=5) + order(
        "grace", "SOL", "USDC", "2", "failed"
    )
    write_log(own_database_url, sorted(second, key=lambda r: r.at))
    live = (
        stats_projection.apply_batch if projection == stats_projection.NAME else orders_projection.apply_batch
    )
    crashing = LogFollower(
        own_pool, projection, crashing_after(live, applied=7), version=VERSIONS[projection], batch_size=100
    )
    with pytest.raises(Crash):
        await crashing.step()
    assert [await rows(own_pool, t, "1, 2") for t in tables] == before
    async with own_pool.connection() as conn:
        assert await read_checkpoint(conn, projection) == checkpoint

    await follow(own_pool, projection, batch_size=100)
    async with own_pool.connection() as conn:
        assert await read_checkpoint(conn, projection) == checkpoint + len(second)
        history = await read_all(conn, 0, 1000)
    if projection == stats_projection.NAME:
        frank = await user_stats(own_pool, "frank")
        assert frank is not None and frank["orders"] == 3
        assert frank["byStatus"]["confirmed"] == 2 and frank["avgExecutionSeconds"] == 3.5
        sums = await rows(own_pool, "stats_pairs", "1, 2, 3")
        assert sum(r[3] for r in sums) == 4  # every order once
    else:
        async with own_pool.connection() as conn:
            cur = await conn.execute("SELECT id::text, status, version FROM orders")
            table = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
        for stream in {e.stream_id for e in history}:
            state = fold(e.event for e in history if e.stream_id == stream)
            assert table[stream] == (state.status, state.version)

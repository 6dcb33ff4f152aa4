"""The route step under the deployment's execution limits, and limit orders that wait
for their price: who takes a slot, when, and what a deferred step sends."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.in_memory import SentStep
from domain.events import OrderRouting, OrderWaiting
from domain.services.execution import DONE, Outcome
from tests.unit.service_fakes import Rig, without_state

pytestmark = pytest.mark.anyio

# At 150 USDC/SOL, a 1.5 SOL order nets about 149.5 after the fee and the price impact.
LIMIT = Decimal(160)


async def test_a_full_limiter_defers_the_route_and_requeues_it_with_a_delay() -> None:
    rig = Rig(max_in_flight=1)
    await rig.slots.acquire("someone-else")
    oid = await rig.place()

    outcome = await rig.execution.run("route", oid, 1, "route-1")

    assert outcome.defer_ms is not None and 200 <= outcome.defer_ms <= 500
    assert (outcome.next_step, outcome.retry_in_ms) == (None, None)
    assert without_state(rig.queue.sent) == [SentStep(step="route", order_id=oid, delay_ms=outcome.defer_ms)]
    assert [r.type for r in await rig.store.read_stream(oid)] == ["OrderPending"]
    assert rig.raydium.quoted == 0  # no quote is spent on an order that cannot start
    assert rig.slots.holders == {"someone-else"}


async def test_a_deferred_sniper_route_is_requeued_in_the_priority_lane() -> None:
    rig = Rig(max_in_flight=1)
    await rig.slots.acquire("someone-else")
    oid = await rig.place(order_type="sniper")
    await rig.execution.run("route", oid, 1, "route-1")
    assert [(s.step, s.priority) for s in rig.queue.sent] == [("route", True)]


async def test_a_rate_limited_start_defers_by_the_limiters_wait() -> None:
    rig = Rig(per_minute=1)  # the clock is fixed: the one start of this minute is used below
    await rig.slots.acquire("earlier-order")
    await rig.slots.release("earlier-order")
    oid = await rig.place()

    outcome = await rig.execution.run("route", oid, 1, "route-1")

    assert outcome == Outcome(defer_ms=60_000)
    assert without_state(rig.queue.sent) == [SentStep(step="route", order_id=oid, delay_ms=60_000)]
    assert [r.type for r in await rig.store.read_stream(oid)] == ["OrderPending"]
    assert rig.slots.holders == set()


async def test_a_limit_order_below_its_price_waits_without_a_slot() -> None:
    rig = Rig()
    oid = await rig.place(order_type="limit", limit_price=LIMIT)

    outcome = await rig.execution.run("route", oid, 1, "route-1")

    assert outcome == DONE
    waiting = (await rig.events(oid))[-1]
    assert isinstance(waiting, OrderWaiting)
    assert (waiting.best_dex, waiting.limit_price) == ("raydium", LIMIT)
    assert Decimal(149) < waiting.best_price < Decimal(150)
    assert rig.slots.holders == set()
    assert without_state(rig.queue.sent) == []


async def test_a_limit_order_does_not_spend_a_start_while_it_waits() -> None:
    rig = Rig(per_minute=1)
    oid = await rig.place(order_type="limit", limit_price=LIMIT)
    await rig.execution.run("route", oid, 1, "route-1")
    assert rig.slots.starts == []


async def test_a_waiting_order_whose_price_barely_moved_records_nothing() -> None:
    rig = Rig()
    oid = await rig.place(order_type="limit", limit_price=LIMIT)
    await rig.execution.run("route", oid, 1, "route-1")
    rig.raydium.price = Decimal("150.1")  # better by less than 0.1%
    before = await rig.store.last_position()

    outcome = await rig.execution.run("route", oid, 1, "requote-1")

    assert outcome == DONE
    assert await rig.store.last_position() == before
    assert (await rig.state(oid)).status == "waiting"
    assert (rig.slots.holders, rig.queue.sent) == (set(), [])


async def test_a_waiting_order_whose_price_improved_records_the_new_best() -> None:
    rig = Rig()
    oid = await rig.place(order_type="limit", limit_price=LIMIT)
    await rig.execution.run("route", oid, 1, "route-1")
    first = (await rig.state(oid)).best_price
    rig.raydium.price = Decimal(155)

    await rig.execution.run("route", oid, 1, "requote-1")

    state = await rig.state(oid)
    assert [r.type for r in await rig.store.read_stream(oid)][1:] == ["OrderWaiting", "OrderWaiting"]
    assert first is not None and state.best_price is not None and state.best_price > first
    assert state.status == "waiting"


async def test_a_limit_order_that_becomes_marketable_routes_and_takes_a_slot() -> None:
    rig = Rig()
    oid = await rig.place(order_type="limit", limit_price=LIMIT)
    await rig.execution.run("route", oid, 1, "route-1")
    rig.raydium.price = Decimal(170)

    outcome = await rig.execution.run("route", oid, 1, "requote-1")

    assert outcome == Outcome(next_step="build")
    assert isinstance((await rig.events(oid))[-1], OrderRouting)
    assert rig.slots.holders == {oid}
    assert without_state(rig.queue.sent) == [SentStep(step="build", order_id=oid)]


async def test_a_marketable_limit_order_defers_when_no_slot_is_free() -> None:
    rig = Rig(max_in_flight=1)
    await rig.slots.acquire("someone-else")
    oid = await rig.place(order_type="limit", limit_price=Decimal(100))

    outcome = await rig.execution.run("route", oid, 1, "route-1")

    assert outcome.defer_ms is not None
    assert [r.type for r in await rig.store.read_stream(oid)] == ["OrderPending"]
    assert without_state(rig.queue.sent) == [SentStep(step="route", order_id=oid, delay_ms=outcome.defer_ms)]


async def test_a_limit_order_whose_price_fell_by_build_waits_again_and_frees_its_slot() -> None:
    rig = Rig()
    oid = await rig.place(order_type="limit", limit_price=LIMIT)
    rig.raydium.price = Decimal(170)
    await rig.execution.run("route", oid, 1, "route-1")
    rig.raydium.price = Decimal(150)

    outcome = await rig.execution.run("build", oid, 1, "build-1")

    assert outcome == DONE
    state = await rig.state(oid)
    assert (state.status, state.chosen_dex) == ("waiting", None)
    assert rig.slots.holders == set()
    assert [s.step for s in rig.queue.sent] == ["build"]  # from the route; build sent nothing


async def test_the_slot_and_its_start_are_taken_once_the_quotes_are_in() -> None:
    rig = Rig()
    oid = await rig.place()
    held_while_quoting: list[bool] = []

    async def look() -> None:
        held_while_quoting.append(oid in rig.slots.holders)

    rig.raydium.while_quoting = look
    await rig.execution.run("route", oid, 1, "route-1")

    assert held_while_quoting == [False]  # the start counts when the routing is recorded
    assert oid in rig.slots.holders and len(rig.slots.starts) == 1


async def test_a_slot_taken_by_another_order_while_quoting_defers_the_route() -> None:
    rig = Rig(max_in_flight=1)
    oid = await rig.place()

    async def someone_else_starts() -> None:
        await rig.slots.acquire("someone-else")

    rig.raydium.while_quoting = someone_else_starts
    outcome = await rig.execution.run("route", oid, 1, "route-1")

    assert outcome.defer_ms is not None
    assert [r.type for r in await rig.store.read_stream(oid)] == ["OrderPending"]
    assert rig.slots.holders == {"someone-else"}

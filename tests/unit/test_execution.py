"""The four execution steps of a market order, over in-memory ports and an instant DEX:
what each step records, what it hands on, and what a redelivery does."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from adapters.in_memory import SentStep
from domain.commands import CancelOrder
from domain.errors import DomainError
from domain.events import OrderConfirmed, OrderFailed, OrderRouting, Step, SwapRequested
from domain.ports import RecordedEvent
from domain.routing import minimum_out
from domain.services.execution import DONE, Outcome
from tests.unit.service_fakes import Rig, record, without_state

pytestmark = pytest.mark.anyio

STEPS: tuple[Step, ...] = ("route", "build", "submit", "confirm")
NEXT: dict[Step, Step | None] = {"route": "build", "build": "submit", "submit": "confirm", "confirm": None}


async def run_through(rig: Rig, order_id: str, last: Step) -> None:
    """Run the steps in order up to and including `last`, one message each."""
    for step in STEPS[: STEPS.index(last) + 1]:
        await rig.execution.run(step, order_id, 1, f"{step}-1")


async def test_each_step_of_a_market_order_records_its_own_events() -> None:
    rig = Rig()
    oid = await rig.place()
    recorded: dict[str, list[str]] = {}
    for step in STEPS:
        before = len(await rig.store.read_stream(oid))
        await rig.execution.run(step, oid, 1, f"{step}-1")
        recorded[step] = [r.type for r in (await rig.store.read_stream(oid))[before:]]
    assert recorded == {
        "route": ["OrderRouting"],
        "build": ["OrderBuilding"],
        "submit": ["SwapRequested", "OrderSubmitted"],
        "confirm": ["OrderConfirmed"],
    }
    assert [r.version for r in await rig.store.read_stream(oid)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("step", STEPS)
async def test_each_step_hands_on_the_next_one(step: Step) -> None:
    rig = Rig()
    oid = await rig.place()
    if step != "route":
        await run_through(rig, oid, STEPS[STEPS.index(step) - 1])
    rig.queue.sent.clear()

    outcome = await rig.execution.run(step, oid, 1, f"{step}-1")

    follows = NEXT[step]
    assert outcome == Outcome(next_step=follows)
    expected = [] if follows is None else [SentStep(step=follows, order_id=oid)]
    assert without_state(rig.queue.sent) == expected


async def test_a_sniper_orders_next_steps_take_the_priority_lane() -> None:
    rig = Rig()
    oid = await rig.place(order_type="sniper")
    await run_through(rig, oid, "submit")
    assert [(s.step, s.priority) for s in rig.queue.sent] == [
        ("build", True),
        ("submit", True),
        ("confirm", True),
    ]


async def test_the_slot_is_taken_at_route_and_held_until_the_order_ends() -> None:
    rig = Rig()
    oid = await rig.place()
    held: dict[str, set[str]] = {}
    for step in STEPS:
        await rig.execution.run(step, oid, 1, f"{step}-1")
        held[step] = set(rig.slots.holders)
    assert held == {"route": {oid}, "build": {oid}, "submit": {oid}, "confirm": set()}


async def test_a_confirmed_order_records_what_the_swap_returned() -> None:
    rig = Rig()
    oid = await rig.place()
    await run_through(rig, oid, "confirm")
    state = await rig.state(oid)
    assert state.status == "confirmed"
    assert state.expected_out is not None and state.amount_out == state.expected_out
    assert state.tx_hash == f"tx-{oid}:swap"
    assert state.explorer_url == f"https://explorer.test/tx/tx-{oid}:swap"
    assert isinstance((await rig.events(oid))[-1], OrderConfirmed)


@pytest.mark.parametrize("step", STEPS)
async def test_a_redelivered_step_records_and_queues_nothing(step: Step) -> None:
    rig = Rig()
    oid = await rig.place()
    await run_through(rig, oid, step)
    before, sent = await rig.store.last_position(), len(rig.queue.sent)

    outcome = await rig.execution.run(step, oid, 1, f"{step}-1")

    assert outcome == DONE
    assert await rig.store.last_position() == before
    assert len(rig.queue.sent) == sent


async def test_submit_records_the_swap_intent_before_the_dex_sends_it() -> None:
    rig = Rig()
    oid = await rig.place()
    await run_through(rig, oid, "build")

    await rig.execution.run("submit", oid, 1, "submit-1")

    [seen] = rig.raydium.submissions
    # The DEX was called with the order at version 4: pending, routing, building, SwapRequested.
    assert (seen.version, seen.swap_key, seen.idempotency_key) == (4, f"{oid}:swap", f"{oid}:swap")
    assert (await rig.events(oid))[3] == SwapRequested(
        dex="raydium", idempotency_key=f"{oid}:swap", signature=f"tx-{oid}:swap"
    )


async def test_a_submit_redelivered_after_a_crash_resends_under_the_same_key_without_a_new_intent() -> None:
    rig = Rig()
    oid = await rig.place()
    await run_through(rig, oid, "build")
    rig.raydium.submit_error = RuntimeError("worker killed mid-send")
    with pytest.raises(RuntimeError):
        await rig.execution.run("submit", oid, 1, "submit-1")
    rig.raydium.submit_error = None

    outcome = await rig.execution.run("submit", oid, 1, "submit-1")

    assert outcome == Outcome(next_step="confirm")
    types = [r.type for r in await rig.store.read_stream(oid)]
    assert types.count("SwapRequested") == 1
    assert types[-1] == "OrderSubmitted"
    assert [s.idempotency_key for s in rig.raydium.submissions] == [f"{oid}:swap", f"{oid}:swap"]
    assert (await rig.state(oid)).tx_hash == f"tx-{oid}:swap"


async def test_a_fill_below_min_out_fails_the_order_for_slippage_and_frees_its_slot() -> None:
    rig = Rig()
    oid = await rig.place(slippage_tolerance=Decimal("0.01"))
    await run_through(rig, oid, "submit")
    rig.raydium.fill = Decimal("0.98")  # 2% short, the tolerance is 1%

    outcome = await rig.execution.run("confirm", oid, 1, "confirm-1")

    assert outcome == DONE
    failed = (await rig.events(oid))[-1]
    assert isinstance(failed, OrderFailed)
    assert failed.step == "confirm" and "slippage exceeded" in failed.error
    state = await rig.state(oid)
    assert state.expected_out is not None
    assert state.min_out == minimum_out(state.expected_out, Decimal("0.01"))
    assert (state.status, rig.slots.holders) == ("failed", set())


async def test_two_concurrent_routes_of_one_order_record_one_routing_and_keep_its_slot() -> None:
    rig = Rig()
    oid = await rig.place()

    results = await asyncio.gather(
        rig.execution.run("route", oid, 1, "message-a"),
        rig.execution.run("route", oid, 1, "message-b"),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["InvalidTransition", "Outcome"]
    assert sum(isinstance(r, DomainError) for r in results) == 1
    assert [type(e) for e in (await rig.events(oid))[1:]] == [OrderRouting]
    assert rig.slots.holders == {oid}
    assert without_state(rig.queue.sent) == [SentStep(step="build", order_id=oid)]


# --- the state handed over with the next step --------------------------------------------


@pytest.mark.parametrize("step", ["route", "build", "submit"])
async def test_each_step_hands_over_the_state_it_recorded(step: Step) -> None:
    rig = Rig()
    oid = await rig.place()
    if step != "route":
        await run_through(rig, oid, STEPS[STEPS.index(step) - 1])
    rig.queue.sent.clear()

    await rig.execution.run(step, oid, 1, f"{step}-1")

    assert [s.state for s in rig.queue.sent] == [await rig.state(oid)]


async def test_a_step_given_the_state_reads_nothing_and_appends_once() -> None:
    rig = Rig()
    oid = await rig.place()
    await rig.execution.run("route", oid, 1, "route-1")
    handed = rig.queue.sent[-1].state
    assert handed is not None
    reads = CountingReads(rig)

    await rig.execution.run("build", oid, 1, "build-1", handed)

    assert reads.count == 0
    assert (await rig.state(oid)).status == "building"


async def test_a_step_given_a_stale_state_decides_again_on_a_fresh_read() -> None:
    rig = Rig()
    oid = await rig.place()
    stale = await rig.state(oid)  # pending, version 1
    await rig.execution.run("route", oid, 1, "route-1")  # the order moved on meanwhile
    events = len(await rig.events(oid))

    # Its append loses to the route recorded meanwhile; decided again on a fresh read, the
    # command is refused like any duplicate of a step that already ran.
    with pytest.raises(DomainError):
        await rig.execution.run("route", oid, 1, "route-2", stale)

    assert len(await rig.events(oid)) == events
    assert oid in rig.slots.holders  # the slot stays with the routed order


async def test_a_stale_state_of_a_cancelled_order_gives_the_slot_back() -> None:
    rig = Rig()
    oid = await rig.place()
    stale = await rig.state(oid)
    await record(rig.store, oid, CancelOrder(command_id="c"))

    with pytest.raises(DomainError):
        await rig.execution.run("route", oid, 1, "route-1", stale)

    assert (await rig.state(oid)).status == "cancelled"
    assert oid not in rig.slots.holders


class CountingReads:
    """Counts the stream reads of a rig's store from now on."""

    def __init__(self, rig: Rig) -> None:
        self.count = 0
        inner = rig.store.read_stream

        async def counted(stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
            self.count += 1
            return await inner(stream_id, after_version)

        rig.store.read_stream = counted  # type: ignore[method-assign]

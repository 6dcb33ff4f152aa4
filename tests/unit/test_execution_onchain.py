"""The execution steps with an on-chain venue: the build plans the compute budget, the
submit records the signed transaction before sending it, an expired transaction is signed
again, and a program error fails the order without a retry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import SwapExpired, SwapPending, SwapRejected, TransientError
from domain.events import (
    OrderBuilding,
    OrderConfirmed,
    OrderFailed,
    OrderRouting,
    OrderSubmitted,
    Step,
    SwapReissued,
    SwapRequested,
)
from domain.ports import SwapPlan
from domain.services.execution import DONE, Outcome
from tests.unit.service_fakes import FakeDex, Rig

pytestmark = pytest.mark.anyio

STEPS: tuple[Step, ...] = ("route", "build", "submit", "confirm")


def chain_rig() -> Rig:
    rig = Rig()
    rig.raydium.on_chain = True
    rig.raydium.budget = SwapPlan(compute_units=84_000, priority_fee=1_500)
    return rig


async def run_through(rig: Rig, order_id: str, last: Step) -> None:
    for step in STEPS[: STEPS.index(last) + 1]:
        await rig.execution.run(step, order_id, 1, f"{step}-1")


async def test_the_build_records_the_compute_budget_the_venue_planned_for_the_decided_swap() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "build")

    [terms] = rig.raydium.planned
    building = (await rig.events(oid))[-1]
    assert isinstance(building, OrderBuilding)
    assert (building.compute_units, building.priority_fee) == (84_000, 1_500)
    assert terms.min_out == building.min_out and terms.amount == Decimal("1.5")
    assert (terms.token_in, terms.token_out, terms.quote.dex) == ("SOL", "USDC", "raydium")


async def test_a_swap_the_venue_rejects_at_build_fails_the_order_before_anything_is_signed() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "route")
    rig.raydium.plan_error = SwapRejected("insufficient funds: the wallet holds 0.2 SOL, the swap needs 1.5")

    outcome = await rig.execution.run("build", oid, 1, "build-1")

    assert outcome == DONE
    failed = (await rig.events(oid))[-1]
    assert isinstance(failed, OrderFailed)
    assert (failed.step, failed.error) == (
        "build",
        "insufficient funds: the wallet holds 0.2 SOL, the swap needs 1.5",
    )
    assert rig.raydium.signed == [] and rig.slots.holders == set()


async def test_the_signed_transaction_is_in_the_log_before_it_is_sent() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "submit")

    [sent] = rig.raydium.submissions
    requested = (await rig.events(oid))[3]
    assert isinstance(requested, SwapRequested)
    assert requested.signature == sent.signature and requested.transaction == "AQID"
    assert requested.last_valid_block_height is not None
    assert sent.version == 4  # the send saw SwapRequested already stored
    submitted = (await rig.events(oid))[4]
    assert isinstance(submitted, OrderSubmitted) and submitted.tx_hash == sent.signature


async def test_a_redelivered_submit_resends_the_recorded_transaction_without_signing_again() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "build")
    rig.raydium.send_errors = [RuntimeError("worker killed mid-send")]
    with pytest.raises(RuntimeError):
        await rig.execution.run("submit", oid, 1, "submit-1")

    outcome = await rig.execution.run("submit", oid, 1, "submit-1")

    assert outcome == Outcome(next_step="confirm")
    assert len(rig.raydium.signed) == 1
    assert [s.signature for s in rig.raydium.submissions] == rig.raydium.signed * 2


async def test_a_transaction_that_expired_before_it_was_submitted_is_signed_again_and_sent() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "build")
    first = f"tx-{oid}:swap-1"
    rig.raydium.send_errors = [SwapExpired(first)]

    outcome = await rig.execution.run("submit", oid, 1, "submit-1")
    assert outcome == Outcome(next_step="submit")
    reissued = (await rig.events(oid))[-1]
    assert isinstance(reissued, SwapReissued)
    assert (reissued.previous_signature, reissued.reissue) == (first, 1)

    assert await rig.execution.run("submit", oid, 1, "submit-2") == Outcome(next_step="confirm")
    state = await rig.state(oid)
    assert state.status == "submitted" and state.tx_hash == reissued.signature != first
    assert [s.signature for s in rig.raydium.submissions] == [first, reissued.signature]


async def test_a_submitted_transaction_that_expired_unlanded_is_replaced_and_the_new_one_confirmed() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "submit")
    first = (await rig.state(oid)).tx_hash
    assert first is not None
    rig.raydium.confirm_errors = [SwapExpired(first)]

    outcome = await rig.execution.run("confirm", oid, 1, "confirm-1")

    assert outcome == Outcome(next_step="confirm")
    state = await rig.state(oid)
    assert state.status == "submitted" and state.tx_hash != first and state.reissues == 1
    assert rig.raydium.submissions[-1].signature == state.tx_hash  # the new one went out
    await rig.execution.run("confirm", oid, 1, "confirm-2")
    confirmed = (await rig.events(oid))[-1]
    assert isinstance(confirmed, OrderConfirmed) and confirmed.tx_hash == state.tx_hash


async def test_an_order_whose_transaction_keeps_expiring_fails_after_the_allowed_reissues() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "submit")
    for n in range(rig.policy.max_reissues + 1):
        tx_hash = (await rig.state(oid)).tx_hash
        assert tx_hash is not None
        rig.raydium.confirm_errors = [SwapExpired(tx_hash)]
        await rig.execution.run("confirm", oid, 1, f"confirm-{n}")

    failed = (await rig.events(oid))[-1]
    assert isinstance(failed, OrderFailed)
    assert failed.step == "confirm" and "expired without landing" in failed.error
    assert rig.slots.holders == set()


async def test_a_program_error_at_confirmation_fails_the_order_without_a_retry() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "submit")
    rig.raydium.confirm_errors = [
        SwapRejected("Raydium CPMM: ExceededSlippage (6005): Exceeds desired slippage limit")
    ]

    outcome = await rig.execution.run("confirm", oid, 1, "confirm-1")

    assert outcome == DONE
    failed = (await rig.events(oid))[-1]
    assert isinstance(failed, OrderFailed) and "ExceededSlippage (6005)" in failed.error
    assert [r.type for r in await rig.store.read_stream(oid)].count("RetryScheduled") == 0
    assert rig.slots.holders == set()


async def test_the_confirmation_carries_what_the_chain_says_the_swap_did() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "confirm")

    confirmed = (await rig.events(oid))[-1]
    assert isinstance(confirmed, OrderConfirmed)
    assert (confirmed.slot, confirmed.fee_paid, confirmed.amount_in) == (
        7,
        Decimal("0.000005"),
        Decimal("1.5"),
    )
    assert confirmed.explorer_url == f"https://explorer.test/tx/{confirmed.tx_hash}"


async def test_a_swap_not_landed_yet_is_asked_again_later_without_spending_an_attempt() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "submit")
    before = len(await rig.events(oid))
    rig.raydium.confirm_errors = [SwapPending("tx", retry_in_ms=500)]

    outcome = await rig.execution.run("confirm", oid, 1, "confirm-1")

    assert outcome == Outcome(defer_ms=500)
    assert len(await rig.events(oid)) == before
    assert rig.queue.sent[-1].step == "confirm" and rig.queue.sent[-1].delay_ms == 500


async def test_an_rpc_failure_while_confirming_a_signed_swap_waits_instead_of_failing_the_order() -> None:
    rig = chain_rig()
    oid = await rig.place()
    await run_through(rig, oid, "submit")
    before = len(await rig.events(oid))
    rig.raydium.confirm_errors = [TransientError("Solana RPC down")] * 5

    for n in range(5):  # more than the attempts a retry would be allowed
        outcome = await rig.execution.run("confirm", oid, 1, f"confirm-{n}")
        assert outcome.defer_ms is not None and outcome.defer_ms > 0

    assert len(await rig.events(oid)) == before
    assert (await rig.state(oid)).status == "submitted"
    await rig.execution.run("confirm", oid, 1, "confirm-last")
    assert (await rig.state(oid)).status == "confirmed"


async def test_the_routing_names_each_venue_left_out_with_its_reason() -> None:
    rig = chain_rig()
    meteora = FakeDex("meteora", store=rig.store)
    meteora.quote_error = TransientError("meteora: pool 9xQ activates at slot 900, not yet")
    rig = Rig({"raydium": rig.raydium, "meteora": meteora})
    oid = await rig.place()

    await rig.execution.run("route", oid, 1, "route-1")

    routing = (await rig.events(oid))[-1]
    assert isinstance(routing, OrderRouting)
    assert [q.dex for q in routing.quotes] == ["raydium"]
    assert routing.unavailable == {"meteora": "meteora: pool 9xQ activates at slot 900, not yet"}

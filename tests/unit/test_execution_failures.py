"""The execution steps when the world fails or the order moves on: transient errors and
their backoff, giving up, pairs without a pool, and orders cancelled under a step."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from adapters import mock_dex
from adapters.in_memory import RecordingStepQueue
from domain.commands import CancelOrder
from domain.errors import DomainError, NoPool, QueueUnavailable, TransientError
from domain.events import OrderAwaitingLaunch, OrderCancelled, OrderFailed, RetryScheduled, Step
from domain.services.execution import DONE, Outcome
from tests.unit.service_fakes import Rig, record

pytestmark = pytest.mark.anyio


async def routed(rig: Rig, **overrides: object) -> str:
    oid = await rig.place(**overrides)
    await rig.execution.run("route", oid, 1, "route-1")
    return oid


async def submitted(rig: Rig) -> str:
    oid = await routed(rig)
    for step in ("build", "submit"):
        await rig.execution.run(step, oid, 1, f"{step}-1")
    return oid


# --- transient errors ---------------------------------------------------------------


async def test_a_transient_quote_failure_records_a_retry_with_backoff_and_asks_to_be_retried() -> None:
    rig = Rig(backoff_base_ms=100)
    rig.raydium.quote_error = TransientError("rpc timeout")
    oid = await rig.place()

    outcome = await rig.execution.run("route", oid, 2, "route-1")

    assert outcome == Outcome(retry_in_ms=200)  # 100 ms * 2**(2-1), no jitter
    retry = (await rig.events(oid))[-1]
    assert isinstance(retry, RetryScheduled)
    assert (retry.step, retry.attempt, retry.delay_ms) == ("route", 2, 200)
    assert "rpc timeout" in retry.error
    assert (await rig.state(oid)).status == "pending"
    assert rig.queue.sent == []  # the caller retries the same message


async def test_a_route_that_fails_transiently_gives_back_the_slot_it_took() -> None:
    rig = Rig()
    rig.raydium.quote_error = TransientError("rpc timeout")
    oid = await rig.place()
    await rig.execution.run("route", oid, 1, "route-1")
    assert rig.slots.holders == set()


async def test_a_transient_failure_while_executing_keeps_the_slot() -> None:
    rig = Rig()
    oid = await submitted(rig)
    rig.raydium.confirm_error = TransientError("cannot tell yet")

    outcome = await rig.execution.run("confirm", oid, 1, "confirm-1")

    assert outcome.retry_in_ms is not None
    assert ((await rig.state(oid)).status, rig.slots.holders) == ("submitted", {oid})


async def test_the_same_failed_attempt_redelivered_is_recorded_once() -> None:
    rig = Rig()
    rig.raydium.quote_error = TransientError("rpc timeout")
    oid = await rig.place()
    first = await rig.execution.run("route", oid, 1, "route-1")
    again = await rig.execution.run("route", oid, 1, "route-1")
    assert again == first
    assert [r.type for r in await rig.store.read_stream(oid)] == ["OrderPending", "RetryScheduled"]


async def test_the_last_attempt_fails_the_order_and_frees_its_slot() -> None:
    rig = Rig(max_attempts=3)
    oid = await submitted(rig)
    rig.raydium.confirm_error = TransientError("cannot tell yet")

    outcome = await rig.execution.run("confirm", oid, 3, "confirm-1")

    assert outcome == DONE
    failed = (await rig.events(oid))[-1]
    assert isinstance(failed, OrderFailed)
    assert (failed.step, failed.attempts) == ("confirm", 3)
    assert "gave up after 3 attempts" in failed.error
    assert ((await rig.state(oid)).status, rig.slots.holders) == ("failed", set())


# --- no pool ------------------------------------------------------------------------


def mock_venues() -> dict[str, mock_dex.MockDex]:
    """The mock Raydium and Meteora without a market: reference prices, LAUNCH unlaunched."""
    venues = (
        mock_dex.raydium(latency_scale=Decimal(0), rng=random.Random(1)),
        mock_dex.meteora(latency_scale=Decimal(0), rng=random.Random(2)),
    )
    return {v.name: v for v in venues}


async def test_a_sniper_order_without_a_pool_waits_for_the_launch_and_frees_its_slot() -> None:
    rig = Rig(mock_venues())
    oid = await rig.place(order_type="sniper", token_out="LAUNCH")

    outcome = await rig.execution.run("route", oid, 1, "route-1")

    assert outcome == DONE
    assert (await rig.events(oid))[-1] == OrderAwaitingLaunch(token="LAUNCH")
    assert (await rig.state(oid)).status == "waiting"
    assert (rig.slots.holders, rig.queue.sent) == (set(), [])


async def test_a_market_order_without_a_pool_fails_and_frees_its_slot() -> None:
    rig = Rig(mock_venues())
    oid = await rig.place(token_out="LAUNCH")

    outcome = await rig.execution.run("route", oid, 1, "route-1")

    assert outcome == DONE
    failed = (await rig.events(oid))[-1]
    assert isinstance(failed, OrderFailed)
    assert (failed.step, failed.error) == ("route", "no pool for SOL/LAUNCH")
    assert (rig.slots.holders, rig.queue.sent) == (set(), [])


async def test_a_sniper_woken_after_its_launch_routes_and_takes_a_slot() -> None:
    rig = Rig()
    rig.raydium.quote_error = NoPool("SOL", "LAUNCH")
    oid = await rig.place(order_type="sniper", token_out="LAUNCH")
    await rig.execution.run("route", oid, 1, "route-1")
    rig.raydium.quote_error = None  # launched

    outcome = await rig.execution.run("route", oid, 1, "wake-1")

    assert outcome == Outcome(next_step="build")
    assert ((await rig.state(oid)).status, rig.slots.holders) == ("routing", {oid})


# --- cancelled under a step ---------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "after"), [("route", ()), ("build", ("route",)), ("submit", ("route", "build"))]
)
async def test_a_step_of_an_order_cancelled_meanwhile_does_nothing_and_frees_the_slot(
    step: Step, after: tuple[Step, ...]
) -> None:
    rig = Rig()
    oid = await rig.place()
    for done in after:
        await rig.execution.run(done, oid, 1, f"{done}-1")
    await record(rig.store, oid, CancelOrder(command_id="cancel"))
    before, sent = await rig.store.last_position(), len(rig.queue.sent)

    outcome = await rig.execution.run(step, oid, 1, f"{step}-1")

    assert outcome == DONE
    assert await rig.store.last_position() == before
    assert len(rig.queue.sent) == sent
    assert rig.slots.holders == set()
    assert rig.raydium.submissions == []


async def test_a_cancel_that_lands_while_routing_quotes_wins_and_the_slot_is_freed() -> None:
    rig = Rig()
    oid = await rig.place()
    rig.raydium.while_quoting = lambda: record(rig.store, oid, CancelOrder(command_id="cancel"))

    with pytest.raises(DomainError):
        await rig.execution.run("route", oid, 1, "route-1")

    assert isinstance((await rig.events(oid))[-1], OrderCancelled)
    assert (rig.slots.holders, rig.queue.sent) == (set(), [])


@pytest.mark.parametrize(
    ("step", "error"),
    [
        pytest.param("route", TransientError("rpc timeout"), id="route-transient"),
        pytest.param("route", NoPool("SOL", "USDC"), id="route-no-pool"),
        pytest.param("build", TransientError("rpc timeout"), id="build-transient"),
    ],
)
async def test_a_cancel_that_lands_while_a_quote_fails_still_frees_the_slot(
    step: Step, error: Exception
) -> None:
    rig = Rig()
    # A market order takes its slot before quoting; a marketable limit order holds one
    # from routing and re-quotes at build.
    if step == "build":
        oid = await rig.place(order_type="limit", limit_price=Decimal(100))
        await rig.execution.run("route", oid, 1, "route-1")
    else:
        oid = await rig.place()
    rig.raydium.while_quoting = lambda: record(rig.store, oid, CancelOrder(command_id="cancel"))
    rig.raydium.quote_error = error

    with pytest.raises(DomainError):
        await rig.execution.run(step, oid, 1, f"{step}-1")

    assert [r.type for r in await rig.store.read_stream(oid)][-1] == "OrderCancelled"
    assert rig.slots.holders == set()


# --- the queue unreachable after the step recorded its work ---------------------------


class FlakyQueue(RecordingStepQueue):
    """Refuses the first `failures` sends, as Redis restarting would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def send(self, *args: Any, **kwargs: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise QueueUnavailable("cannot queue: Connection closed by server.")
        await super().send(*args, **kwargs)


async def test_a_step_whose_next_step_cannot_be_queued_yet_waits_for_the_queue() -> None:
    # A redelivered step hands on nothing: were the message failed here, the order would
    # stand still, recorded as building, until the stuck-order re-driver looked.
    rig = Rig()
    oid = await routed(rig)
    rig.execution.queue = rig.queue = FlakyQueue(failures=3)

    outcome = await rig.execution.run("build", oid, 1, "build-1")

    assert outcome == Outcome(next_step="submit")
    assert [(s.step, s.order_id) for s in rig.queue.sent] == [("submit", oid)]
    assert (await rig.state(oid)).status == "building"


async def test_a_queue_unreachable_past_the_patience_fails_the_message_not_the_order() -> None:
    rig = Rig()
    oid = await routed(rig)
    rig.execution.policy = msgspec.structs.replace(rig.policy, queue_patience_s=0.2)
    rig.execution.queue = rig.queue = FlakyQueue(failures=1_000)

    with pytest.raises(QueueUnavailable):  # an infrastructure error: Dramatiq runs it again
        await rig.execution.run("build", oid, 1, "build-1")

    assert (await rig.state(oid)).status == "building"  # recorded, left to the re-driver

"""The scheduler's jobs over waiting orders: re-quoting, expiry, and token launches,
with a read model (`OrderFinder`) that may lag the log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from adapters.in_memory import RecordingStepQueue, SentStep
from adapters.memory_event_store import InMemoryEventStore
from domain.events import OrderExpired, OrderType
from domain.services.handling import load
from domain.services.waiting import WaitingOrders
from tests.factories import new_order_id
from tests.unit.service_fakes import NOW, clock, order_in

pytestmark = pytest.mark.anyio


class FakeOrderFinder:
    """The `orders` read model as fixed rows: waiting orders (with the token they wait on)
    and the ids it believes overdue. It records what it was asked."""

    def __init__(self, waiting: Iterable[tuple[str, OrderType, str]] = (), due: Iterable[str] = ()) -> None:
        self.waiting_rows = list(waiting)
        self.due = list(due)
        self.asked_due_at: list[datetime] = []

    async def waiting(self, token: str | None = None, limit: int = 1000) -> list[tuple[str, OrderType]]:
        return [(oid, kind) for oid, kind, on in self.waiting_rows if token is None or on == token][:limit]

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[str]:
        self.asked_due_at.append(now)
        return self.due[:limit]

    async def stuck(self, older_than: datetime, limit: int = 1000) -> list[tuple[str, str, int, OrderType]]:
        return []


class FakeLaunches:
    def __init__(self, launched: Iterable[str] = ()) -> None:
        self.launched = set(launched)

    async def launch(self, token: str) -> bool:
        if token in self.launched:
            return False
        self.launched.add(token)
        return True

    async def is_launched(self, token: str) -> bool:
        return token in self.launched


class Setup:
    def __init__(self, finder: FakeOrderFinder | None = None, launches: FakeLaunches | None = None) -> None:
        self.store = InMemoryEventStore(clock=clock)
        self.queue = RecordingStepQueue()
        self.finder = finder or FakeOrderFinder()
        self.launches = launches or FakeLaunches()
        self.jobs = WaitingOrders(self.store, self.finder, self.queue, self.launches, clock)

    async def status(self, order_id: str) -> str:
        return (await load(self.store, order_id)).state.status


# --- re-quoting ---------------------------------------------------------------------


async def test_requote_queues_a_route_for_each_waiting_order_priority_for_snipers() -> None:
    limit, sniper = new_order_id(), new_order_id()
    s = Setup(FakeOrderFinder(waiting=[(limit, "limit", "USDC"), (sniper, "sniper", "LAUNCH")]))

    assert await s.jobs.requote_waiting() == 2

    assert s.queue.sent == [
        SentStep(step="route", order_id=limit, priority=False),
        SentStep(step="route", order_id=sniper, priority=True),
    ]


# --- expiry -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "waiting"])
async def test_an_overdue_limit_order_not_yet_executing_is_expired(status: str) -> None:
    s = Setup()
    expires = NOW - timedelta(seconds=1)
    oid = await order_in(s.store, status, order_type="limit", limit_price=Decimal(1000), expires_at=expires)
    s.finder.due = [oid]

    assert await s.jobs.expire_overdue() == 1

    last = (await s.store.read_stream(oid))[-1]
    assert last.event == OrderExpired(expires_at=expires)
    assert (last.metadata.actor, last.metadata.issued_at) == ("scheduler:expire", NOW)
    assert s.finder.asked_due_at == [NOW]


async def test_an_order_listed_as_due_before_its_time_is_left_alone() -> None:
    s = Setup()
    oid = await order_in(s.store, "waiting", expires_at=NOW + timedelta(seconds=1))
    s.finder.due = [oid]
    before = await s.store.last_position()

    assert await s.jobs.expire_overdue() == 0

    assert await s.store.last_position() == before
    assert await s.status(oid) == "waiting"


@pytest.mark.parametrize("moved_on", ["routing", "cancelled", "failed"])
async def test_an_order_that_moved_on_is_skipped_and_the_rest_still_expire(moved_on: str) -> None:
    s = Setup()
    overdue = {"order_type": "limit", "limit_price": Decimal(100), "expires_at": NOW - timedelta(hours=1)}
    gone = await order_in(s.store, moved_on, **overdue)
    due = await order_in(s.store, "pending", **overdue)
    s.finder.due = [gone, due]

    assert await s.jobs.expire_overdue() == 1

    assert (await s.status(gone), await s.status(due)) == (moved_on, "expired")


async def test_an_order_already_expired_is_not_expired_or_counted_again() -> None:
    s = Setup()
    oid = await order_in(s.store, "waiting", expires_at=NOW - timedelta(minutes=1))
    s.finder.due = [oid]
    await s.jobs.expire_overdue()
    before = await s.store.last_position()

    # The read model has not caught up yet and lists the order again.
    assert await s.jobs.expire_overdue() == 0

    assert await s.store.last_position() == before


# --- launches -----------------------------------------------------------------------


async def test_a_launch_opens_the_token_and_wakes_only_the_orders_waiting_on_it() -> None:
    sniper, other = new_order_id(), new_order_id()
    s = Setup(FakeOrderFinder(waiting=[(sniper, "sniper", "LAUNCH"), (other, "limit", "USDC")]))

    assert await s.jobs.launch("LAUNCH") == (True, 1)

    assert s.launches.launched == {"LAUNCH"}
    assert s.queue.sent == [SentStep(step="route", order_id=sniper, priority=True)]


async def test_launching_a_launched_token_says_so_and_wakes_its_orders_again() -> None:
    sniper = new_order_id()
    s = Setup(FakeOrderFinder(waiting=[(sniper, "sniper", "LAUNCH")]), FakeLaunches(["LAUNCH"]))

    assert await s.jobs.launch("LAUNCH") == (False, 1)

    assert s.queue.sent == [SentStep(step="route", order_id=sniper, priority=True)]


async def test_launch_due_launches_only_tokens_whose_time_has_come_and_not_yet_launched() -> None:
    due, later, done = new_order_id(), new_order_id(), new_order_id()
    finder = FakeOrderFinder(
        waiting=[(due, "sniper", "DUE"), (later, "sniper", "LATER"), (done, "sniper", "DONE")]
    )
    s = Setup(finder, FakeLaunches(["DONE"]))
    schedule = {
        "DUE": NOW,
        "LATER": NOW + timedelta(seconds=1),
        "DONE": NOW - timedelta(hours=1),
    }

    assert await s.jobs.launch_due(schedule) == 1

    assert s.launches.launched == {"DUE", "DONE"}
    assert s.queue.sent == [SentStep(step="route", order_id=due, priority=True)]

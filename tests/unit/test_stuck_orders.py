"""Re-driving stuck orders: each stuck order's next step sent again, once per version."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest

from adapters.in_memory import RecordingStepQueue, SentStep
from domain.errors import QueueUnavailable
from domain.events import OrderType
from domain.services.redrive import StuckOrders
from tests.factories import new_order_id
from tests.unit.service_fakes import NOW, clock

pytestmark = pytest.mark.anyio

STUCK_AFTER = timedelta(seconds=30)

Row = tuple[str, str, int, OrderType]


class StuckFinder:
    """The `orders` read model's stuck rows, as given; it records the cut-off it was asked for."""

    def __init__(self, rows: Iterable[Row] = ()) -> None:
        self.rows = list(rows)
        self.asked_older_than: list[datetime] = []

    async def waiting(self, token: str | None = None, limit: int = 1000) -> list[tuple[str, OrderType]]:
        return []

    async def due_for_expiry(self, now: datetime, limit: int = 1000) -> list[str]:
        return []

    async def stuck(self, older_than: datetime, limit: int = 1000) -> list[Row]:
        self.asked_older_than.append(older_than)
        return self.rows[:limit]


class FakeRedriveClaims:
    """Each (order, version) can be claimed once, as the Redis `SET NX` does."""

    def __init__(self) -> None:
        self.claimed: set[tuple[str, int]] = set()

    async def claim(self, order_id: str, version: int) -> bool:
        if (order_id, version) in self.claimed:
            return False
        self.claimed.add((order_id, version))
        return True

    async def release(self, order_id: str, version: int) -> None:
        self.claimed.discard((order_id, version))


def setup(rows: Iterable[Row]) -> tuple[StuckOrders, StuckFinder, RecordingStepQueue]:
    finder, queue = StuckFinder(rows), RecordingStepQueue()
    return StuckOrders(finder, queue, FakeRedriveClaims(), STUCK_AFTER, clock), finder, queue


async def test_each_stuck_order_gets_the_message_of_its_next_step() -> None:
    ids = [new_order_id() for _ in range(4)]
    rows: list[Row] = [
        (ids[0], "pending", 1, "market"),
        (ids[1], "routing", 2, "market"),
        (ids[2], "building", 4, "limit"),
        (ids[3], "submitted", 5, "market"),
    ]
    stuck, _, queue = setup(rows)

    assert await stuck.redrive() == 4

    assert queue.sent == [
        SentStep(step="route", order_id=ids[0]),
        SentStep(step="build", order_id=ids[1]),
        SentStep(step="submit", order_id=ids[2]),
        SentStep(step="confirm", order_id=ids[3]),
    ]


async def test_a_stuck_sniper_order_is_redriven_in_the_priority_lane() -> None:
    oid = new_order_id()
    stuck, _, queue = setup([(oid, "routing", 2, "sniper")])
    await stuck.redrive()
    assert queue.sent == [SentStep(step="build", order_id=oid, priority=True)]


async def test_only_orders_quiet_for_longer_than_stuck_after_are_asked_for() -> None:
    stuck, finder, _ = setup([])
    await stuck.redrive()
    assert finder.asked_older_than == [NOW - STUCK_AFTER]


async def test_an_order_still_stuck_at_the_same_version_is_not_redriven_again() -> None:
    oid = new_order_id()
    stuck, _, queue = setup([(oid, "building", 4, "market")])
    await stuck.redrive()

    assert await stuck.redrive() == 0

    assert queue.sent == [SentStep(step="submit", order_id=oid)]


async def test_an_order_stuck_again_at_a_later_version_is_redriven_again() -> None:
    oid = new_order_id()
    stuck, finder, queue = setup([(oid, "building", 4, "market")])
    await stuck.redrive()
    finder.rows = [(oid, "submitted", 6, "market")]

    assert await stuck.redrive() == 1

    assert [s.step for s in queue.sent] == ["submit", "confirm"]


async def test_an_order_whose_redrive_could_not_be_queued_is_redriven_on_the_next_check() -> None:
    oid = new_order_id()
    stuck, _, queue = setup([(oid, "pending", 1, "market")])
    queue.fail = QueueUnavailable("broker unreachable")
    with contextlib.suppress(QueueUnavailable):
        await stuck.redrive()
    queue.fail = None

    await stuck.redrive()

    assert queue.sent == [SentStep(step="route", order_id=oid)]

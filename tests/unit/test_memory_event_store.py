"""What the in-memory store promises beyond the EventStore contract (which
tests/integration/test_event_store_contract.py checks): dense positions from 1 and
recorded_at from its clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from adapters.memory_event_store import InMemoryEventStore, rising_utc_clock
from domain.events import RetryScheduled
from domain.ports import EventMetadata
from tests.factories import new_order_id, pending_event

META = EventMetadata(correlation_id="c", causation_id="test", actor="test")


def test_positions_run_from_one_without_a_gap_across_streams() -> None:
    async def scenario() -> list[int]:
        store = InMemoryEventStore()
        a, b = new_order_id(), new_order_id()
        await store.append(a, 0, [pending_event(a)], META)
        await store.append(
            b, 0, [pending_event(b), RetryScheduled(step="route", attempt=1, error="x", delay_ms=1)], META
        )
        await store.append(a, 1, [RetryScheduled(step="route", attempt=1, error="y", delay_ms=1)], META)
        return [r.position for r in await store.read_all(0, 10)]

    assert asyncio.run(scenario()) == [1, 2, 3, 4]


def test_recorded_at_comes_from_the_injected_clock() -> None:
    times = iter([datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC)])

    async def scenario() -> list[datetime]:
        store = InMemoryEventStore(clock=lambda: next(times))
        oid = new_order_id()
        recorded = await store.append(
            oid, 0, [pending_event(oid), RetryScheduled(step="route", attempt=1, error="x", delay_ms=1)], META
        )
        return [r.recorded_at for r in recorded]

    assert asyncio.run(scenario()) == [datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC)]


def test_default_clock_is_utc_now_and_strictly_rising() -> None:
    clock = rising_utc_clock()
    before = datetime.now(UTC)
    readings = [clock() for _ in range(1000)]  # far more than the wall clock's ticks
    assert all(r.utcoffset() == timedelta(0) for r in readings)
    assert all(x < y for x, y in pairwise(readings))
    assert before <= readings[0] and readings[-1] - datetime.now(UTC) < timedelta(seconds=1)

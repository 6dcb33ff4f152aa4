"""Replaying an order to a version or an instant, with the engine's own fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.commands import BuildTransaction, RouteOrder
from domain.order import OrderState, decide, fold
from domain.ports import EventMetadata, RecordedEvent
from domain.replay import ReplayError, replay
from tests.factories import new_order_id, place_order, quotes

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def history() -> list[RecordedEvent]:
    """pending, routing, building: one event a second."""
    events = []
    state = OrderState()
    for command in (
        place_order(new_order_id()),
        RouteOrder(command_id="route", quotes=quotes()),
        BuildTransaction(command_id="build"),
    ):
        decided = decide(state, command)
        state = fold(decided, state)
        events += decided
    meta = EventMetadata(correlation_id="o", causation_id="c", actor="test")
    return [
        RecordedEvent(
            position=10 + i,
            stream_id="o",
            version=i + 1,
            type=type(e).__name__,
            event=e,
            metadata=meta,
            recorded_at=START + timedelta(seconds=i),
        )
        for i, e in enumerate(events)
    ]


def test_to_a_version_keeps_events_up_to_it_and_folds_them() -> None:
    kept, state = replay(history(), to_version=2)
    assert [r.version for r in kept] == [1, 2]
    assert state.status == "routing" and state.chosen_dex is not None and state.min_out is None


def test_as_of_an_instant_gives_the_state_at_that_moment() -> None:
    kept, state = replay(history(), as_of=START + timedelta(seconds=1, milliseconds=500))
    assert [r.type for r in kept] == ["OrderPending", "OrderRouting"] and state.status == "routing"
    _, before = replay(history(), as_of=START - timedelta(seconds=1))
    assert before.status == "new"


def test_no_cut_is_the_whole_history() -> None:
    events = history()
    kept, state = replay(events)
    assert kept == events and state == fold(r.event for r in events) and state.status == "building"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"to_version": 1, "as_of": START},
        {"to_version": -1},
        {"as_of": datetime(2026, 11, 24, 12, 0)},  # no timezone
    ],
)
def test_a_cut_that_cannot_be_made_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ReplayError):
        replay(history(), **kwargs)  # type: ignore[arg-type]

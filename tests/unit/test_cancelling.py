"""Cancelling an order: allowed until its swap is being sent, refused after."""

from __future__ import annotations

import pytest

from adapters.memory_event_store import InMemoryEventStore
from domain.errors import CannotCancel, OrderNotFound
from domain.events import OrderCancelled
from domain.services.cancelling import Cancellation
from domain.services.handling import load
from tests.factories import new_order_id
from tests.unit.service_fakes import NOW, clock, order_in

pytestmark = pytest.mark.anyio


def setup() -> tuple[InMemoryEventStore, Cancellation]:
    store = InMemoryEventStore(clock=clock)
    return store, Cancellation(store, clock)


@pytest.mark.parametrize("status", ["pending", "waiting", "routing", "building"])
async def test_an_order_not_yet_sending_its_swap_is_cancelled(status: str) -> None:
    store, cancellation = setup()
    oid = await order_in(store, status)
    before = (await load(store, oid)).state.version

    state = await cancellation.cancel(oid, by="user", owner="user-1")

    assert (state.status, state.cancelled_by, state.version) == ("cancelled", "user", before + 1)
    last = (await store.read_stream(oid))[-1]
    assert last.version == before + 1
    assert last.event == OrderCancelled(reason="cancelled by the user", by="user")
    assert (last.metadata.actor, last.metadata.issued_at) == ("api", NOW)


async def test_an_operator_cancel_records_who_cancelled() -> None:
    store, cancellation = setup()
    oid = await order_in(store, "routing")
    state = await cancellation.cancel(oid, by="operator")
    assert (state.status, state.cancelled_by) == ("cancelled", "operator")


async def test_cancel_is_refused_once_the_swap_is_requested() -> None:
    store, cancellation = setup()
    oid = await order_in(store, "requested")
    before = await store.last_position()
    with pytest.raises(CannotCancel) as refused:
        await cancellation.cancel(oid, by="user")
    assert refused.value.status == "building"
    assert await store.last_position() == before


@pytest.mark.parametrize("status", ["submitted", "confirmed", "failed", "expired"])
async def test_cancel_is_refused_once_submitted_or_ended_with_the_status(status: str) -> None:
    store, cancellation = setup()
    oid = await order_in(store, status)
    before = await store.last_position()
    with pytest.raises(CannotCancel) as refused:
        await cancellation.cancel(oid, by="user")
    assert refused.value.status == status
    assert await store.last_position() == before


async def test_cancelling_an_unknown_order_is_not_found() -> None:
    store, cancellation = setup()
    unknown = new_order_id()
    with pytest.raises(OrderNotFound) as missing:
        await cancellation.cancel(unknown, by="user")
    assert missing.value.order_id == unknown
    assert await store.last_position() == 0


async def test_cancelling_another_users_order_is_not_found_and_leaves_it_alone() -> None:
    store, cancellation = setup()
    oid = await order_in(store, "pending", user_id="alice")
    with pytest.raises(OrderNotFound):
        await cancellation.cancel(oid, by="user", owner="mallory")
    assert (await load(store, oid)).state.status == "pending"
    assert await store.last_position() == 1


async def test_repeating_a_cancel_returns_the_cancelled_order_and_records_nothing_more() -> None:
    store, cancellation = setup()
    oid = await order_in(store, "pending")
    await cancellation.cancel(oid, by="user")
    again = await cancellation.cancel(oid, by="user")
    assert again.status == "cancelled"
    assert [r.type for r in await store.read_stream(oid)] == ["OrderPending", "OrderCancelled"]

"""Placing an order: stored once per idempotency key, then its routing queued."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from adapters.in_memory import RecordingStepQueue, SentStep, UnlimitedRate
from adapters.memory_event_store import InMemoryEventStore
from domain.commands import RouteOrder
from domain.errors import IdempotencyKeyReused, QueueUnavailable, RateLimited
from domain.events import OrderPending
from domain.services.handling import load
from domain.services.placing import OrderRequest, Placement
from tests.factories import quotes
from tests.unit.service_fakes import NOW, clock, record, without_state

pytestmark = pytest.mark.anyio


class Setup:
    def __init__(self, wait_s: float = 0.0) -> None:
        self.store = InMemoryEventStore(clock=clock)
        self.queue = RecordingStepQueue()
        self.placement = Placement(self.store, self.queue, UnlimitedRate(wait_s), clock)


def request(**overrides: object) -> OrderRequest:
    fields: dict[str, object] = {
        "user_id": "user-1",
        "order_type": "market",
        "token_in": "SOL",
        "token_out": "USDC",
        "amount": Decimal("1.5"),
        "slippage_tolerance": Decimal("0.01"),
    }
    fields.update(overrides)
    return OrderRequest(**fields)  # type: ignore[arg-type]


def a_key() -> str:
    return f"key-{uuid.uuid4().hex}"


async def test_a_new_order_is_stored_pending_at_version_1() -> None:
    s = Setup()
    placed = await s.placement.place(request(amount=Decimal(2)))
    [stored] = await s.store.read_stream(placed.order_id)
    assert (placed.status, placed.new, placed.queued) == ("pending", True, True)
    assert stored.version == 1
    assert stored.event == OrderPending(
        order_id=placed.order_id,
        user_id="user-1",
        order_type="market",
        token_in="SOL",
        token_out="USDC",
        amount=Decimal(2),
        slippage_tolerance=Decimal("0.01"),
    )
    assert (stored.metadata.actor, stored.metadata.issued_at) == ("api", NOW)


async def test_a_new_order_queues_its_route_step() -> None:
    s = Setup()
    placed = await s.placement.place(request())
    assert without_state(s.queue.sent) == [SentStep(step="route", order_id=placed.order_id, priority=False)]


async def test_a_sniper_order_queues_its_route_step_in_the_priority_lane() -> None:
    s = Setup()
    placed = await s.placement.place(request(order_type="sniper", token_out="LAUNCH"))
    assert without_state(s.queue.sent) == [SentStep(step="route", order_id=placed.order_id, priority=True)]


async def test_orders_without_a_key_get_distinct_ids() -> None:
    s = Setup()
    first, second = await s.placement.place(request()), await s.placement.place(request())
    assert first.order_id != second.order_id
    assert (first.new, second.new) == (True, True)


async def test_a_keyed_retry_with_the_same_terms_names_the_same_order_and_stores_nothing() -> None:
    s = Setup()
    key = a_key()
    first = await s.placement.place(request(idempotency_key=key))
    retry = await s.placement.place(request(idempotency_key=key))
    assert retry.order_id == first.order_id
    assert (retry.new, retry.status) == (False, "pending")
    assert await s.store.last_position() == 1
    assert len(s.queue.sent) == 1  # only the first request queued its route


async def test_a_keyed_retry_reports_where_the_order_stands_now() -> None:
    s = Setup()
    key = a_key()
    first = await s.placement.place(request(idempotency_key=key))
    await record(s.store, first.order_id, RouteOrder(command_id="r", quotes=quotes()))
    retry = await s.placement.place(request(idempotency_key=key))
    assert (retry.order_id, retry.status, retry.new) == (first.order_id, "routing", False)


async def test_a_key_reused_with_other_terms_is_refused_with_the_stored_status() -> None:
    s = Setup()
    key = a_key()
    first = await s.placement.place(request(idempotency_key=key))
    with pytest.raises(IdempotencyKeyReused) as refused:
        await s.placement.place(request(idempotency_key=key, amount=Decimal(3)))
    assert refused.value.status == "pending"
    [stored] = await s.store.read_stream(first.order_id)
    assert isinstance(stored.event, OrderPending) and stored.event.amount == Decimal("1.5")
    assert len(s.queue.sent) == 1


async def test_concurrent_keyed_duplicates_store_one_order() -> None:
    s = Setup()
    key = a_key()
    results = await asyncio.gather(*(s.placement.place(request(idempotency_key=key)) for _ in range(5)))
    assert len({r.order_id for r in results}) == 1
    assert sorted(r.new for r in results) == [False, False, False, False, True]
    assert await s.store.last_position() == 1
    assert len(s.queue.sent) == 1


async def test_a_rate_limited_user_is_refused_and_nothing_is_stored() -> None:
    s = Setup(wait_s=2.5)
    with pytest.raises(RateLimited) as limited:
        await s.placement.place(request())
    assert limited.value.retry_after_s == 2.5
    assert await s.store.last_position() == 0
    assert without_state(s.queue.sent) == []


async def test_an_unreachable_queue_still_stores_the_order_and_says_it_was_not_queued() -> None:
    s = Setup()
    s.queue.fail = QueueUnavailable("redis down")
    placed = await s.placement.place(request())
    assert (placed.status, placed.new, placed.queued) == ("pending", True, False)
    assert [r.type for r in await s.store.read_stream(placed.order_id)] == ["OrderPending"]


async def test_the_same_key_from_two_users_names_two_orders() -> None:
    s = Setup()
    key = a_key()
    alice = await s.placement.place(request(user_id="alice", idempotency_key=key))
    bob = await s.placement.place(request(user_id="bob", idempotency_key=key))
    assert alice.order_id != bob.order_id
    assert (alice.new, bob.new) == (True, True)
    [bobs] = await s.store.read_stream(bob.order_id)
    assert isinstance(bobs.event, OrderPending) and bobs.event.user_id == "bob"


async def test_the_route_message_carries_the_pending_order_it_stored() -> None:
    s = Setup()
    placed = await s.placement.place(request())

    handed = s.queue.sent[0].state
    assert handed is not None
    assert handed == (await load(s.store, placed.order_id)).state
    assert handed.status == "pending" and handed.version == 1

"""The step queue against real Redis and a real Dramatiq worker: what the async sender
writes is Dramatiq's own message, and the worker's consumers are woken instead of
polling, both when their queue was empty and when they were full."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import msgspec
import pytest
import redis.asyncio as aioredis

from adapters.dramatiq_broker import WakingRedisBroker
from adapters.redis_layout import QUEUE, RedisLayout
from adapters.step_queue import DramatiqStepQueue
from domain.order import OrderState
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

# Far longer than any wait below: a consumer that is not woken shows as a timeout. (A
# worker also takes up to its idle timeout to stop: its threads wait that long for work.)
IDLE_MS = 3_000


@pytest.fixture
def broker(redis_url: str, redis_prefix: str) -> Iterator[WakingRedisBroker]:
    broker = WakingRedisBroker(url=redis_url, layout=RedisLayout(redis_prefix), middleware=[])
    yield broker
    broker.close()


def declare_route(broker: WakingRedisBroker, seen: list[tuple[str, Any]], delay_s: float = 0.0) -> None:
    def route(order_id: str, state: str | None = None) -> None:
        if delay_s:
            time.sleep(delay_s)
        seen.append((order_id, state))

    dramatiq.actor(route, actor_name="route", queue_name=QUEUE, broker=broker)


async def test_a_real_worker_runs_what_the_async_sender_queued_with_its_state(
    broker: WakingRedisBroker, aredis: aioredis.Redis, redis_prefix: str
) -> None:
    seen: list[tuple[str, Any]] = []
    declare_route(broker, seen)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=IDLE_MS)
    worker.start()
    try:
        queue = DramatiqStepQueue(aredis, RedisLayout(redis_prefix))
        order_id = str(uuid.uuid4())
        state = OrderState(order_id=order_id, status="pending", version=1)
        await queue.send("route", order_id, state=state)
        wait_until(lambda: seen, 5, what="the worker to run the message")
    finally:
        worker.stop()
    [(got_id, got_state)] = seen
    assert got_id == order_id
    assert msgspec.json.decode(got_state, type=OrderState) == state  # the state travelled with it


async def test_an_idle_consumer_fetches_a_message_at_once_when_it_is_sent(
    broker: WakingRedisBroker, aredis: aioredis.Redis, redis_prefix: str
) -> None:
    seen: list[tuple[str, Any]] = []
    declare_route(broker, seen)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=5_000)
    worker.start()
    try:
        queue = DramatiqStepQueue(aredis, RedisLayout(redis_prefix))
        time.sleep(0.3)  # the consumer has found its queue empty and waits on its channel
        started = time.monotonic()
        await queue.send("route", str(uuid.uuid4()))
        wait_until(lambda: seen, 5, interval=0.005, what="the worker to run the message")
        took = time.monotonic() - started
    finally:
        worker.stop()
    assert took < 1.0  # waiting out the idle timeout would take up to 5 s


async def test_a_full_consumer_is_woken_by_acks_while_its_queue_never_empties(
    broker: WakingRedisBroker, aredis: aioredis.Redis, redis_prefix: str
) -> None:
    """Only the first of these sends publishes a wake-up (the queue is never empty after
    it): the consumer, full at two messages, must fetch the rest as it acks, not after
    an idle timeout each time (20 messages would take 30 s)."""
    seen: list[tuple[str, Any]] = []
    declare_route(broker, seen, delay_s=0.01)
    queue = DramatiqStepQueue(aredis, RedisLayout(redis_prefix))
    for _ in range(20):
        await queue.send("route", str(uuid.uuid4()))
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=IDLE_MS)  # prefetch: 2
    started = time.monotonic()
    worker.start()
    try:
        wait_until(lambda: len(seen) == 20, 8, interval=0.01, what="all 20 messages to run")
    finally:
        took = time.monotonic() - started
        worker.stop()
    assert took < 5.0


async def test_a_consumer_with_room_keeps_fetching_from_a_queue_that_never_empties(
    broker: WakingRedisBroker, aredis: aioredis.Redis, redis_prefix: str
) -> None:
    """Acks that come while the consumer is not full wake nothing: a consumer that fetched
    messages must look again as soon as it has room, not wait for a wake-up that only an
    empty queue gets (60 messages, four threads: a second lost each time would take a
    minute)."""
    seen: list[tuple[str, Any]] = []
    declare_route(broker, seen, delay_s=0.005)
    queue = DramatiqStepQueue(aredis, RedisLayout(redis_prefix))
    for _ in range(60):
        await queue.send("route", str(uuid.uuid4()))
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=IDLE_MS)
    started = time.monotonic()
    worker.start()
    try:
        wait_until(lambda: len(seen) == 60, 20, interval=0.01, what="all 60 messages to run")
    finally:
        took = time.monotonic() - started
        worker.stop()
    assert took < 5.0

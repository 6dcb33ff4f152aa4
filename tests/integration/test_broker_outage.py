"""A real Dramatiq worker on the engine's broker, reaching real Redis through a proxy that
a test cuts: the messages it holds when the connection breaks are never lost track of.

Before adapters/held_messages.py and the broker's re-sending enqueue, each of these
messages stayed in the live worker's ack set, run by nobody, until the worker died (or
the stuck-order re-driver sent its order's step again, minutes later).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import pytest
import redis
from dramatiq.middleware import Retries

from adapters.dramatiq_broker import WakingRedisBroker
from adapters.redis_layout import QUEUE, RedisLayout
from tests.tcp_proxy import CuttableProxy
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

IDLE_MS = 500  # how often an idle consumer looks at Redis (and so meets the cut)


@pytest.fixture
def proxy(redis_url: str) -> Iterator[CuttableProxy]:
    parts = urlsplit(redis_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    yield proxy
    proxy.close()


@pytest.fixture
def direct(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


class CountingBroker(WakingRedisBroker):
    """The engine's broker, counting the consumers it starts per queue: a second one for a
    queue is Dramatiq's consumer thread starting again after a lost connection, and by the
    time it is counted it has given back what the worker lost track of."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.started: dict[str, int] = {}

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        consumer = super().consume(queue_name, prefetch, timeout)
        self.started[queue_name] = self.started.get(queue_name, 0) + 1
        return consumer

    def restarted(self, queue_name: str) -> bool:
        return self.started.get(queue_name, 0) >= 2


def proxied_broker(redis_url: str, proxy: CuttableProxy, prefix: str, **kwargs: Any) -> CountingBroker:
    path = urlsplit(redis_url).path or "/0"
    return CountingBroker(url=f"redis://127.0.0.1:{proxy.port}{path}", layout=RedisLayout(prefix), **kwargs)


@contextmanager
def running(broker: CountingBroker, step: Callable[..., None], threads: int = 1) -> Iterator[Any]:
    """A real Dramatiq worker running `step` as the `route` actor; yields the actor."""
    actor = dramatiq.actor(step, actor_name="route", queue_name=QUEUE, broker=broker)
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=IDLE_MS)
    worker.start()
    try:
        yield actor
    finally:
        worker.stop()
        broker.close()


def ack_set(broker: WakingRedisBroker, queue_name: str) -> str:
    return f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"


def outage(proxy: CuttableProxy, seconds: float) -> None:
    proxy.cut()
    threading.Timer(seconds, proxy.restore).start()


def test_a_delayed_message_held_when_redis_went_away_runs_once_redis_is_back(
    redis_url: str, redis_prefix: str, proxy: CuttableProxy, direct: redis.Redis
) -> None:
    broker = proxied_broker(redis_url, proxy, redis_prefix, middleware=[])
    runs: list[str] = []
    with running(broker, runs.append) as actor:
        actor.send_with_options(args=("retry-me",), delay=3_000)  # a step's scheduled retry
        wait_until(
            lambda: direct.scard(ack_set(broker, f"{QUEUE}.DQ")) == 1,
            10,
            what="the delay queue's consumer to hold the message",
        )
        outage(proxy, 2.5)  # the consumer meets the cut and drops what it was holding
        wait_until(lambda: runs, 20, what="the delayed message to run")
        time.sleep(0.5)  # a second run, were there one, would come now
    assert runs == ["retry-me"]
    assert direct.scard(ack_set(broker, f"{QUEUE}.DQ")) == 0


def test_a_retry_scheduled_while_redis_is_unreachable_is_sent_once_it_is_back(
    redis_url: str, redis_prefix: str, proxy: CuttableProxy
) -> None:
    broker = proxied_broker(
        redis_url, proxy, redis_prefix, middleware=[Retries(max_retries=3, min_backoff=100, max_backoff=200)]
    )
    runs: list[int] = []

    def step(n: int) -> None:
        runs.append(n)
        if len(runs) == 1:
            outage(proxy, 2.0)  # Redis goes away as the step fails: its retry cannot be sent
            raise RuntimeError("the DEX timed out")

    with running(broker, step) as actor:
        actor.send(7)
        wait_until(lambda: len(runs) >= 2, 20, what="the retry to run")
        time.sleep(0.5)  # a third run, were there one, would come now
    assert runs == [7, 7]


def test_a_message_fetched_but_never_received_is_given_back_when_the_consumer_reconnects(
    redis_url: str, redis_prefix: str, proxy: CuttableProxy, direct: redis.Redis
) -> None:
    broker = proxied_broker(redis_url, proxy, redis_prefix, middleware=[])
    runs: list[str] = []
    actor = dramatiq.actor(runs.append, actor_name="route", queue_name=QUEUE, broker=broker)
    actor.send("lost-reply")
    # A fetch whose reply the connection lost: the message is in the worker's ack set,
    # the worker never saw it.
    assert len(broker.do_fetch(QUEUE, 1)) == 1
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=IDLE_MS)
    worker.start()
    try:
        wait_until(lambda: broker.started.get(QUEUE), 10, what="the worker's consumer to start")
        time.sleep(2 * IDLE_MS / 1000)  # two idle looks at the queue: nobody holds the message
        assert runs == []
        outage(proxy, 1.0)
        wait_until(lambda: broker.restarted(QUEUE), 20, what="the consumer to start again")
        wait_until(lambda: runs, 20, what="the lost message to run")
    finally:
        worker.stop()
        broker.close()
    assert runs == ["lost-reply"]
    assert direct.scard(ack_set(broker, QUEUE)) == 0


def test_messages_the_worker_is_running_are_not_given_back_when_it_reconnects(
    redis_url: str, redis_prefix: str, proxy: CuttableProxy
) -> None:
    broker = proxied_broker(redis_url, proxy, redis_prefix, middleware=[])
    started: list[str] = []
    release = threading.Event()

    def slow(tag: str) -> None:
        started.append(tag)
        release.wait(10)

    with running(broker, slow, threads=2) as actor:
        try:
            tag = uuid.uuid4().hex
            actor.send(tag)
            wait_until(lambda: started, 10, what="the worker to start the message")
            outage(proxy, 2 * IDLE_MS / 1000 + 0.5)  # the idle consumer meets the cut
            # Started again, it has given back what the worker does not hold, by now.
            wait_until(lambda: broker.restarted(QUEUE), 20, what="the consumer to start again")
            release.set()
            time.sleep(1.0)  # a second run of the message, were it given back, would start now
        finally:
            release.set()
    assert started == [tag]  # run once: the message in progress stayed with its worker

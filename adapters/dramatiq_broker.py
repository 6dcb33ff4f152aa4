"""Dramatiq on Redis for the worker: the broker, its middleware, and consumers that wake
when a message arrives instead of polling.

Keys live under `{REDIS_PREFIX}:dramatiq` (Dramatiq's own layout: one list and one hash
per queue, plus `.DQ` delay queues; adapters/redis_layout.py). Dramatiq's consumers
poll an empty queue with a growing sleep up to the worker timeout, so an idle worker
either reacts late or spends CPU polling. Here a consumer that finds nothing waits on
its queue's wake-up channel, which every sender publishes on with each message
(adapters/step_queue.py, and `enqueue` below for messages Dramatiq moves itself): a
message is fetched as soon as it is sent, and `WORKER_IDLE_MS` only bounds how long an
idle consumer trusts the channel before it looks anyway (a wake-up lost while Redis
reconnects costs that long, never a message).

Retries: the actors decide the delay themselves (domain backoff with jitter, recorded
in a RetryScheduled event) and raise `dramatiq.Retry(delay=…)`; the middleware only
schedules it. Infrastructure errors (Postgres or Redis briefly unreachable) are
retried by the middleware with its own backoff, up to INFRA_RETRIES times.

Redis outages: a message Dramatiq enqueues itself (a retry, a delayed message whose time
has come) is sent again until Redis takes it, before the message it replaces is acked
(Dramatiq logs the failure and acks anyway, losing the retry); and a consumer started
again after a lost connection gives back the messages its worker no longer holds
(adapters/held_messages.py).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dramatiq
import psycopg
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from adapters.held_messages import HeldMessages
from adapters.redis_layout import RedisLayout
from adapters.settings import Settings
from domain.errors import QueueUnavailable

log = logging.getLogger("orderengine.broker")

INFRA_RETRIES = 10
# A delay queue's consumer holds messages until their time: it must return soon enough
# for its thread to release them on time, whatever the idle timeout.
_DELAY_QUEUE_WAIT_MS = 100
_STOP_CHECK_S = 0.2
# How often a message Dramatiq enqueues itself is tried again while Redis is unreachable.
_ENQUEUE_RETRY_S = 0.5


def is_infrastructure_error(exc: BaseException | None) -> bool:
    """Postgres or Redis unreachable for a moment (a restart, a lost connection, a pool
    that cannot get one): the step is run again as it was, and it is not an attempt."""
    return isinstance(
        exc,
        psycopg.OperationalError
        | psycopg.InterfaceError
        | redis.ConnectionError
        | redis.TimeoutError
        | QueueUnavailable,
    )


def _retry_when(max_attempts: int):  # type: ignore[no-untyped-def]
    # `retries` counts both kinds: a step's own retries (bounded by the order's attempts,
    # which the domain enforces) and infrastructure ones (bounded here).
    def retry_when(retries: int, exc: BaseException) -> bool:
        if isinstance(exc, dramatiq.Retry):
            return retries < max_attempts + INFRA_RETRIES
        return is_infrastructure_error(exc) and retries < INFRA_RETRIES + max_attempts

    return retry_when


INFRA_RETRIES_OPTION = "infra_retries"


class InfrastructureRetries(dramatiq.Middleware):  # type: ignore[misc]
    """Counts a message's retries caused by infrastructure errors apart (in its options),
    so that the order's attempt number is the step's own retries only: a Postgres restart
    must never use up an order's attempts. Placed after Retries: the after-hooks run in
    reverse, so this one counts before Retries re-enqueues the message."""

    def after_process_message(
        self, broker: dramatiq.Broker, message: Message[Any], *, result: Any = None, exception: Any = None
    ) -> None:
        if is_infrastructure_error(exception):
            message.options[INFRA_RETRIES_OPTION] = message.options.get(INFRA_RETRIES_OPTION, 0) + 1


def order_attempt(options: dict[str, Any]) -> int:
    """The order's attempt a message's run is: its retries, less those infrastructure caused."""
    return max(1, int(options.get("retries", 0)) - int(options.get(INFRA_RETRIES_OPTION, 0)) + 1)


class WakeUps:
    """One subscriber thread per process: sets the events of the consumers whose queue
    got a message. Started with the first consumer."""

    def __init__(self, client: redis.Redis, layout: RedisLayout) -> None:
        self._client = client
        self._layout = layout
        self._events: dict[str, list[threading.Event]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def event_for(self, queue_name: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events.setdefault(self._layout.queue_wakeup(queue_name), []).append(event)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="queue-wakeups", daemon=True)
                self._thread.start()
        return event

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                # One pattern for every queue: consumers that register later are covered too.
                pubsub.psubscribe(self._layout.queue_wakeup("*"))
                self._wake_all()  # anything sent while (re)subscribing is fetched now
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        channel = message["channel"]
                        name = channel.decode() if isinstance(channel, bytes) else str(channel)
                        with self._lock:
                            events = list(self._events.get(name, ()))
                        for event in events:
                            event.set()
            except redis.RedisError:
                log.warning("queue wake-ups lost their Redis connection; consumers poll until it is back")
                self._wake_all()
                self._stop.wait(1.0)
            finally:
                pubsub.close()

    def _wake_all(self) -> None:
        with self._lock:
            for events in self._events.values():
                for event in events:
                    event.set()


class _WakingConsumer(_RedisConsumer):  # type: ignore[misc]
    def __init__(self, broker: WakingRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self._wakeup = broker.wakeups.event_for(queue_name)
        # Unwoken, it looks at Redis once an idle timeout. A delay queue's consumer returns
        # more often: its thread releases the messages it holds when their time comes.
        self._idle_s = timeout / 1000
        self._return_s = (
            min(timeout, _DELAY_QUEUE_WAIT_MS) / 1000 if queue_name.endswith(".DQ") else self._idle_s
        )
        self._next_look = 0.0
        self._woken = False
        self._full = False  # it holds as many messages as it may: acks wake it

    def __next__(self) -> Any:
        try:
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:  # a message deleted between its id and its data
                        continue
                    message = Message.decode(data)
                    self.queued_message_ids.add(message.message_id)
                    self.broker.held.took(self.queue_name, message.options["redis_message_id"])
                    return MessageProxy(message)
                room = self.prefetch - self.outstanding_message_count
                self._full = room <= 0
                if not self._full and (self._woken or time.monotonic() >= self._next_look):
                    # Cleared before looking: a message sent (or a slot freed) after this
                    # wakes the wait below.
                    self._wakeup.clear()
                    self._woken = False
                    self.message_cache = self.broker.do_fetch(self.queue_name, room)
                    if self.message_cache:
                        self._next_look = 0.0  # there may be more: look again when there is room
                        continue
                    # The queue is empty: the next message sent into it wakes this consumer.
                    self._next_look = time.monotonic() + self._idle_s
                # Woken by the queue's channel (it was empty) or by an ack (it was full).
                self._woken = self._wait()
                return None
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None

    def _wait(self) -> bool:
        """Wait for a wake-up (True), at most `_return_s`; in slices, so that a worker that
        is stopping is not held up by a long idle timeout."""
        deadline = time.monotonic() + self._return_s
        while not self._wakeup.wait(min(_STOP_CHECK_S, max(0.0, deadline - time.monotonic()))):
            if self.broker.stopping or time.monotonic() >= deadline:
                return False
        return True

    def ack(self, message: Any) -> None:
        super().ack(message)  # raises while Redis is unreachable: the message is still held
        self.broker.held.done(self.queue_name, message.options["redis_message_id"])
        if self._full:
            self._wakeup.set()  # room to fetch again: do not wait for the next message

    def nack(self, message: Any) -> None:
        super().nack(message)
        self.broker.held.done(self.queue_name, message.options["redis_message_id"])
        if self._full:
            self._wakeup.set()

    def requeue(self, messages: Any) -> None:
        messages = list(messages)
        super().requeue(messages)
        for message in messages:
            self.broker.held.done(self.queue_name, message.options["redis_message_id"])


class WakingRedisBroker(RedisBroker):  # type: ignore[misc]
    def __init__(self, *, layout: RedisLayout, **kwargs: Any) -> None:
        super().__init__(namespace=layout.dramatiq_namespace, **kwargs)
        self.layout = layout
        self.wakeups = WakeUps(self.client, layout)
        self.stopping = False
        self.held = HeldMessages()
        self._consumed: set[str] = set()

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        if signal == "worker_shutdown":
            self.stopping = True  # idle consumers return within _STOP_CHECK_S
        super().emit_before(signal, *args, **kwargs)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> _WakingConsumer:
        # Dramatiq's consumer thread asks again only when its consumer ended: after a lost
        # connection (or an error, or a pause), when some messages may be held by nobody.
        if queue_name in self._consumed:
            try:
                given_back = self.held.give_back_lost(self.client, self.namespace, self.broker_id, queue_name)
            except redis.RedisError as exc:
                raise ConnectionClosed(exc) from None  # the thread tries again in a second
            if given_back:
                log.warning(
                    "gave back messages this worker lost track of while Redis was unreachable",
                    extra={"queue": queue_name, "messages": given_back},
                )
                self.client.publish(self.layout.queue_wakeup(queue_name), "")
        self._consumed.add(queue_name)
        return _WakingConsumer(self, queue_name, prefetch, timeout)

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        # Only Dramatiq enqueues through the worker's broker: a retry, a delayed message whose
        # time has come. Each replaces a message that is acked once this returns, so it is
        # sent again until Redis takes it (a duplicate, if a reply was lost, is a message
        # the steps already run at least once); a stopping worker gives up and leaves the
        # unacked original to the next worker to boot.
        while True:
            try:
                enqueued = super().enqueue(message, delay=delay)
                break
            except (redis.ConnectionError, redis.TimeoutError):
                if self.stopping:
                    raise
                log.warning("Redis is unreachable; sending the message again shortly")
                time.sleep(_ENQUEUE_RETRY_S)
        try:
            self.client.publish(self.layout.queue_wakeup(enqueued.queue_name), "")
        except redis.RedisError:
            pass  # consumers look by themselves within their idle timeout
        return enqueued

    def close(self) -> None:
        self.wakeups.stop()
        super().close()


def make_broker(settings: Settings, redis_url: str, layout: RedisLayout) -> WakingRedisBroker:
    """The worker's broker; its async actors run on one event loop (the AsyncIO middleware)."""
    middleware = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
        AsyncIO(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=max(settings.backoff_base_ms, 1),
            max_backoff=60_000,
            retry_when=_retry_when(settings.max_retries),
        ),
        InfrastructureRetries(),
    ]
    return WakingRedisBroker(
        url=redis_url,
        layout=layout,
        middleware=middleware,
        heartbeat_timeout=settings.worker_heartbeat_timeout_ms,
    )

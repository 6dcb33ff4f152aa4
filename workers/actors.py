"""The Dramatiq actors `route`, `build`, `submit`, `confirm`.

Actors are plain threads (measured faster than Dramatiq's AsyncIO middleware);
each worker thread owns one event loop and its own connections
(`ThreadRuntime`), opened lazily on first use, never at import.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from adapters import metrics
from adapters.bootstrap import make_dexes, make_pool, make_redis
from adapters.postgres_event_store import PostgresEventStore
from adapters.redis_limiter import ExecutionLimiter
from adapters.settings import Settings
from domain.errors import DomainError
from domain.events import Step
from domain.ports import Dex
from workers.broker import PRIORITY_QUEUE, QUEUE
from workers.steps import OrderSteps, Outcome

log = logging.getLogger("orderengine.actors")

STEPS: tuple[Step, ...] = ("route", "build", "submit", "confirm")


def outcome_label(outcome: Outcome) -> str:
    """The `outcome` label of the step latency histogram."""
    if outcome.retry_in_ms is not None:
        return "retry"
    if outcome.defer_ms is not None:
        return "deferred"
    return "ok"


class ThreadRuntime:
    """One worker thread's event loop and the clients bound to it."""

    def __init__(self, settings: Settings, dexes: dict[str, Dex]) -> None:
        self.runner = asyncio.Runner()
        self.steps: OrderSteps = self.runner.run(self._open(settings, dexes))

    async def _open(self, settings: Settings, dexes: dict[str, Dex]) -> OrderSteps:
        self.pool = make_pool(settings, min_size=1, max_size=1)
        await self.pool.open(wait=True)
        self.redis = make_redis(settings)
        limiter = ExecutionLimiter(
            self.redis,
            settings.redis_prefix,
            max_in_flight=settings.queue_max_concurrent,
            per_minute=settings.order_processor_rate,
        )
        return OrderSteps(
            PostgresEventStore(self.pool.connection),
            dexes,
            limiter,
            max_attempts=settings.max_retries,
            backoff_base_ms=settings.backoff_base_ms,
            quote_timeout_s=settings.quote_timeout_ms / 1000,
            rng=random.Random(),
        )

    def run(self, step: Step, order_id: str, attempt: int, message_id: str) -> Outcome:
        return self.runner.run(self.steps.run(step, order_id, attempt, message_id))

    def close(self) -> None:
        """Close the clients on their own loop; call once the thread is done with it."""

        async def close_clients() -> None:
            await self.redis.aclose()
            await self.pool.close()

        self.runner.run(close_clients())
        self.runner.close()


class OrderActors:
    """Declares the actors on `broker`; in a worker they execute the steps."""

    def __init__(self, broker: dramatiq.Broker, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._dexes: dict[str, Dex] | None = None
        self._lock = threading.Lock()
        self._runtimes: list[ThreadRuntime] = []
        self.actors: dict[tuple[Step, bool], dramatiq.Actor[Any, Any]] = {}
        for step in STEPS:
            for priority in (False, True):
                self.actors[(step, priority)] = dramatiq.actor(
                    self._actor_fn(step, priority),
                    actor_name=f"{step}_priority" if priority else step,
                    queue_name=PRIORITY_QUEUE if priority else QUEUE,
                    # Dramatiq runs lower numbers first among the messages a worker holds.
                    priority=0 if priority else 10,
                    broker=broker,
                )

    def send(self, step: Step, order_id: str, delay_ms: int | None = None, *, priority: bool = False) -> None:
        """Enqueue `step` for the order; `priority` (sniper orders) uses the lane ahead of the others."""
        self.actors[(step, priority)].send_with_options(args=(order_id,), delay=delay_ms)

    def _runtime(self) -> ThreadRuntime:
        runtime: ThreadRuntime | None = getattr(self._local, "runtime", None)
        if runtime is None:
            with self._lock:  # one set of DEX clients (and failure plan) per process
                if self._dexes is None:
                    self._dexes = make_dexes(self.settings)
                runtime = ThreadRuntime(self.settings, self._dexes)
                self._runtimes.append(runtime)
            self._local.runtime = runtime
        return runtime

    def close(self) -> None:
        """Release every worker thread's connections (after the worker has stopped)."""
        for runtime in self._runtimes:
            try:
                runtime.close()
            except Exception:
                log.warning("closing a worker thread's clients failed", exc_info=True)
        self._runtimes.clear()

    def _actor_fn(self, step: Step, priority: bool):  # type: ignore[no-untyped-def]
        def execute(order_id: str) -> None:
            message = CurrentMessage.get_current_message()
            attempt = (message.options.get("retries", 0) if message else 0) + 1
            message_id = message.message_id if message else ""
            runtime = self._runtime()  # outside the timing: a thread's first call opens its clients
            started = time.perf_counter()
            try:
                outcome = runtime.run(step, order_id, attempt, message_id)
            except DomainError as exc:  # a decision, not a fault: never retried
                metrics.observe_step(step, "refused", time.perf_counter() - started)
                log.info("step %s skipped: %s", step, exc, extra={"orderId": order_id, "step": step})
                return
            except Exception:
                metrics.observe_step(step, "error", time.perf_counter() - started)
                raise
            metrics.observe_step(step, outcome_label(outcome), time.perf_counter() - started)
            if outcome.retry_in_ms is not None:
                raise dramatiq.Retry(delay=outcome.retry_in_ms)
            if outcome.defer_ms is not None:
                self.send(step, order_id, delay_ms=outcome.defer_ms, priority=priority)
            elif outcome.next_step is not None:
                self.send(outcome.next_step, order_id, priority=priority)

        execute.__name__ = f"{step}_priority" if priority else step
        return execute

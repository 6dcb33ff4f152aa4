"""In-memory twins of the small ports (the event store's is adapters/memory_event_store.py),
for unit tests of the application services: the same behaviour as the Redis and Dramatiq
adapters, kept in a process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from domain.events import Step
from domain.order import OrderState


class SentStep(msgspec.Struct, frozen=True, kw_only=True):
    step: Step
    order_id: str
    priority: bool = False
    delay_ms: int | None = None
    state: OrderState | None = None


class RecordingStepQueue:
    """`StepQueue` that keeps what was sent, in order; `fail` makes sends raise it."""

    def __init__(self) -> None:
        self.sent: list[SentStep] = []
        self.fail: Exception | None = None

    async def send(
        self,
        step: Step,
        order_id: str,
        *,
        priority: bool = False,
        delay_ms: int | None = None,
        state: OrderState | None = None,
    ) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(
            SentStep(step=step, order_id=order_id, priority=priority, delay_ms=delay_ms, state=state)
        )


class InMemorySlots:
    """`ExecutionSlots`: at most `max_in_flight` holders and `per_minute` starts a minute,
    by an injectable clock (seconds)."""

    def __init__(self, max_in_flight: int, per_minute: int, clock: Callable[[], float] | None = None) -> None:
        self.max_in_flight = max_in_flight
        self.per_minute = per_minute
        self.clock = clock or (lambda: datetime.now(UTC).timestamp())
        self.holders: set[str] = set()
        self.starts: list[float] = []

    async def acquire(self, order_id: str) -> int | None:
        wait = await self.peek(order_id)
        if wait is None and order_id not in self.holders:
            self.starts.append(self.clock())
            self.holders.add(order_id)
        return wait

    async def peek(self, order_id: str) -> int | None:
        if order_id in self.holders:
            return None
        if len(self.holders) >= self.max_in_flight:
            return -1
        now = self.clock()
        self.starts = [t for t in self.starts if t > now - 60]
        if len(self.starts) >= self.per_minute:
            return max(1, int((self.starts[0] + 60 - now) * 1000))
        return None

    async def renew(self, order_id: str) -> bool:
        return order_id in self.holders

    async def release(self, order_id: str) -> None:
        self.holders.discard(order_id)

    async def in_flight(self) -> int:
        return len(self.holders)


class UnlimitedRate:
    """`SubmissionRate` that never refuses (or always waits `wait_s`)."""

    def __init__(self, wait_s: float = 0.0) -> None:
        self.wait_s = wait_s

    async def check(self, user_id: str) -> float:
        return self.wait_s

"""The Dramatiq actors `route`, `build`, `submit`, `confirm`: thin adapters over the
execution service (domain/services/execution.py).

Each actor is a plain function in a worker thread: it reads the delivery's attempt
number and message id, runs the step as a coroutine on the process's one event loop
(Dramatiq's AsyncIO middleware), where the engine's pools and clients live, records
the step's latency, and turns the service's answer into Dramatiq's: `Retry(delay)` for
a transient failure, nothing otherwise (the service has already queued the next step).
A sniper order's steps run as `<step>_priority` on their own queue, ahead of the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
import msgspec
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import CurrentMessage

from adapters import metrics
from adapters.dramatiq_broker import order_attempt
from adapters.redis_layout import PRIORITY_QUEUE, QUEUE
from adapters.step_queue import actor_name
from domain.errors import DomainError
from domain.events import Step
from domain.order import OrderState
from domain.services.execution import Outcome

log = logging.getLogger("orderengine.actors")

STEPS: tuple[Step, ...] = ("route", "build", "submit", "confirm")

RunStep = Callable[[Step, str, int, str, OrderState | None], Awaitable[Outcome]]

_state_decoder = msgspec.json.Decoder(OrderState)


def outcome_label(outcome: Outcome) -> str:
    """The `outcome` label of the step latency histogram."""
    if outcome.retry_in_ms is not None:
        return "retry"
    if outcome.defer_ms is not None:
        return "deferred"
    return "ok"


def declare_actors(broker: dramatiq.Broker, run_step: RunStep) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare every step's actor (and its priority twin) on `broker`, running `run_step`."""
    actors: dict[str, dramatiq.Actor[Any, Any]] = {}
    for step in STEPS:
        for priority in (False, True):
            name = actor_name(step, priority)
            actors[name] = dramatiq.actor(
                _actor_fn(step, name, run_step),
                actor_name=name,
                queue_name=PRIORITY_QUEUE if priority else QUEUE,
                # Dramatiq runs lower numbers first among the messages a worker holds.
                priority=0 if priority else 10,
                broker=broker,
            )
    return actors


def _actor_fn(step: Step, name: str, run_step: RunStep) -> Callable[..., None]:
    def execute(order_id: str, state: str | None = None) -> None:
        # The order as the sender recorded it; unreadable, it is read from the log instead.
        known = _known_state(state)
        message = CurrentMessage.get_current_message()
        attempt = order_attempt(message.options) if message else 1
        message_id = message.message_id if message else ""
        loop = get_event_loop_thread()
        if loop is None:
            raise RuntimeError("the AsyncIO middleware is not running")
        started = time.perf_counter()
        try:
            outcome = loop.run_coroutine(run_step(step, order_id, attempt, message_id, known))
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

    execute.__name__ = name
    return execute


def _known_state(raw: str | None) -> OrderState | None:
    if raw is None:
        return None
    try:
        return _state_decoder.decode(raw)
    except msgspec.DecodeError:  # a message from another version of the engine
        log.warning("a step message carried a state this code cannot read; reading the log")
        return None

"""A step that failed on Postgres or Redis is run again as it was: it is not an attempt."""

from __future__ import annotations

import dramatiq
import psycopg
import pytest
import redis
from dramatiq import Message

from adapters.dramatiq_broker import (
    INFRA_RETRIES,
    InfrastructureRetries,
    _retry_when,
    is_infrastructure_error,
    order_attempt,
)
from domain.errors import QueueUnavailable


def message(**options: int) -> Message[None]:
    return Message(queue_name="orders", actor_name="route", args=(), kwargs={}, options=dict(options))


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        redis.ConnectionError("Connection refused"),
        redis.TimeoutError("Timeout connecting to server"),
        QueueUnavailable("cannot queue confirm: Connection closed by server."),
    ],
)
def test_a_lost_connection_is_counted_apart_and_does_not_advance_the_attempt(error: Exception) -> None:
    counted = message(retries=1)
    InfrastructureRetries().after_process_message(None, counted, exception=error)  # type: ignore[arg-type]
    counted.options["retries"] += 1  # what Retries then does
    assert is_infrastructure_error(error)
    assert order_attempt(counted.options) == 2  # still the attempt it was


def test_a_steps_own_retry_advances_the_attempt() -> None:
    retried = message(retries=1)
    InfrastructureRetries().after_process_message(None, retried, exception=dramatiq.Retry(delay=10))  # type: ignore[arg-type]
    retried.options["retries"] += 1
    assert order_attempt(retried.options) == 3


def test_the_first_run_is_attempt_one() -> None:
    assert order_attempt({}) == 1


def test_infrastructure_errors_are_retried_a_bounded_number_of_times_and_other_errors_not() -> None:
    retry_when = _retry_when(3)
    outage = psycopg.OperationalError("connection refused")
    assert retry_when(0, outage) and retry_when(INFRA_RETRIES + 2, outage)
    assert not retry_when(INFRA_RETRIES + 3, outage)
    assert not retry_when(0, ValueError("a bug"))

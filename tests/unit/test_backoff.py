"""The retry delay curve: exponential from the base, jittered up to 25%, capped."""

from __future__ import annotations

import pytest

from domain.backoff import backoff_ms


def test_delay_doubles_from_the_base_without_jitter() -> None:
    assert [backoff_ms(attempt, 500) for attempt in (1, 2, 3, 4)] == [500, 1000, 2000, 4000]


def test_first_attempt_waits_exactly_the_base() -> None:
    assert backoff_ms(1, 750, jitter=0.0) == 750


@pytest.mark.parametrize("jitter", [0.0, 0.1, 0.5, 0.9, 0.999999])
def test_jitter_stretches_the_delay_by_at_most_a_quarter(jitter: float) -> None:
    delay = backoff_ms(3, 1000, jitter=jitter)
    assert 4000 <= delay <= 5000


def test_jitter_stretches_proportionally() -> None:
    assert backoff_ms(1, 1000, jitter=0.5) == 1125


def test_jitter_close_to_one_stretches_close_to_a_quarter() -> None:
    assert backoff_ms(1, 1000, jitter=0.999) == 1249


def test_cap_bounds_a_large_attempt() -> None:
    assert backoff_ms(20, 500, cap_ms=30_000) == 30_000


def test_cap_bounds_the_jittered_delay_too() -> None:
    # 8000 * 1.2 = 9600 would overshoot a cap of 9000.
    assert backoff_ms(5, 500, jitter=0.8, cap_ms=9000) == 9000


def test_delay_below_the_cap_is_not_affected_by_it() -> None:
    assert backoff_ms(2, 500, cap_ms=1001) == 1000


def test_default_cap_is_one_minute() -> None:
    assert backoff_ms(30, 500) == 60_000


def test_cap_holds_for_a_very_large_attempt_number() -> None:
    assert backoff_ms(1100, 500, cap_ms=60_000) == 60_000


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_below_one_is_rejected(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_ms(attempt, 500)


@pytest.mark.parametrize("jitter", [-0.01, 1.0, 1.5])
def test_jitter_outside_zero_to_one_is_rejected(jitter: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        backoff_ms(1, 500, jitter=jitter)

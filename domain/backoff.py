"""Retry delays, as a pure function so tests can check the curve."""

from __future__ import annotations


def backoff_ms(attempt: int, base_ms: int, jitter: float = 0.0, cap_ms: int = 60_000) -> int:
    """Delay before retrying after failed attempt number `attempt` (1-based).

    `base * 2**(attempt-1)`, stretched by `jitter` in [0, 1) (up to 25% longer)
    so that many orders failing together do not retry in lock-step; capped.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if base_ms < 0 or cap_ms < 0:
        raise ValueError("base and cap must not be negative")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    # Past 2**40 the cap has long been reached; bounding the exponent keeps the
    # arithmetic in range for any attempt number.
    raw = base_ms * (2 ** min(attempt - 1, 40))
    return min(cap_ms, int(raw * (1 + 0.25 * jitter)))

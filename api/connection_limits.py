"""Open WebSocket connections per user, counted in this API process.

Per process, not per deployment: a counter in Redis would outlive a crashed
process and lock its users out. With several API processes the effective limit
is the per-process limit times the number of processes behind the balancer.
"""

from __future__ import annotations

from collections import Counter


class ConnectionLimits:
    def __init__(self, per_user: int) -> None:
        self._per_user = per_user  # 0: no limit
        self._open: Counter[str] = Counter()

    def acquire(self, user: str) -> bool:
        if self._per_user and self._open[user] >= self._per_user:
            return False
        self._open[user] += 1
        return True

    def release(self, user: str) -> None:
        self._open[user] -= 1
        if self._open[user] <= 0:
            del self._open[user]

    @property
    def total(self) -> int:
        return sum(self._open.values())

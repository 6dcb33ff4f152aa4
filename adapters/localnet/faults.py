"""Faults a test can switch on, all off by default and all cleared by `reset()`.

- `drop_next(n)`: the next n sent transactions are accepted (preflight runs, the
  signature is returned) and then lost: they never land.
- `hold_landing(ms)`: from now on each sent transaction lands on the first slot tick
  at least `ms` after it was sent, not at once; a test can stop a process between
  send and confirmation.
- `outage(ms)`: for `ms` the RPC server answers HTTP 503 to every request except the
  `localnet_*` admin methods (so a test can still end it).
Advancing slots is not a fault but an action: `LocalChain.advance_slots(n)`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    drop_remaining: int = 0
    hold_ms: int = 0
    outage_until: float = 0.0  # on the chain's monotonic clock

    def drop_next(self, count: int) -> None:
        self.drop_remaining = max(0, count)

    def take_drop(self) -> bool:
        """Whether the transaction being sent is to be dropped (counts it)."""
        if self.drop_remaining > 0:
            self.drop_remaining -= 1
            return True
        return False

    def hold_landing(self, ms: int) -> None:
        self.hold_ms = max(0, ms)

    def outage(self, now: float, ms: int) -> None:
        self.outage_until = now + max(0, ms) / 1000

    def in_outage(self, now: float) -> bool:
        return now < self.outage_until

    def reset(self) -> None:
        self.drop_remaining = 0
        self.hold_ms = 0
        self.outage_until = 0.0

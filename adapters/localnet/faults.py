"""Faults a test can switch on, all off by default and all cleared by `reset()`.

- `drop_next(n)`: the next n sent transactions are accepted (preflight runs, the
  signature is returned) and then lost: they never land.
- `hold_landing(ms)`: from now on each sent transaction lands on the first slot tick
  at least `ms` after it was sent, not at once; a test can stop a process between
  send and confirmation.
- `lose_next(n)`: like `drop_next`, and every later send of those same transactions
  (a rebroadcast) is lost too: their blockhash runs out before they can land, as when
  a congested leader never sees them.
- `front_run(pool, action)`: just before the next sent transaction that writes `pool`
  lands, `action` runs (a trader's swap on the pool, say): the transaction meets the
  moved price, as a sandwiched swap does.
- `outage(ms)`: for `ms` the RPC server answers HTTP 503 to every request except the
  `localnet_*` admin methods (so a test can still end it).
Advancing slots is not a fault but an action: `LocalChain.advance_slots(n)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from solders.pubkey import Pubkey
from solders.signature import Signature


@dataclass
class Faults:
    drop_remaining: int = 0
    hold_ms: int = 0
    outage_until: float = 0.0  # on the chain's monotonic clock
    lose_remaining: int = 0
    lost: set[Signature] = field(default_factory=set)
    front_runs: list[tuple[Pubkey, Callable[[], None]]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Whether a sent transaction must take the slow path (preflight, then landing)."""
        return bool(
            self.drop_remaining or self.hold_ms or self.lose_remaining or self.lost or self.front_runs
        )

    def lose_next(self, count: int) -> None:
        self.lose_remaining = max(0, count)

    def take_loss(self, signature: Signature) -> bool:
        """Whether this send is lost: a lost transaction again, or one of the next to lose."""
        if signature in self.lost:
            return True
        if self.lose_remaining > 0:
            self.lose_remaining -= 1
            self.lost.add(signature)
            return True
        return False

    def front_run(self, pool: Pubkey, action: Callable[[], None]) -> None:
        self.front_runs.append((pool, action))

    def take_front_run(self, writable: set[Pubkey]) -> Callable[[], None] | None:
        for index, (pool, action) in enumerate(self.front_runs):
            if pool in writable:
                del self.front_runs[index]
                return action
        return None

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
        self.lose_remaining = 0
        self.lost.clear()
        self.front_runs.clear()

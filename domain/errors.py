"""The domain's error hierarchy.

`DomainError`s are decisions (the order cannot do that now) and are never retried;
`TransientError`s are the outside world failing for a while and are retried with
backoff by the workers.
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class DomainError(EngineError):
    """A command the order's current state does not allow. Not retried."""


class InvalidTransition(DomainError):
    def __init__(self, status: str, command: str) -> None:
        super().__init__(f"cannot {command} an order that is {status}")
        self.status = status
        self.command = command


class CannotCancel(DomainError):
    """The swap is already being sent (or done); `status` is where the order stands."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class OrderNotFound(DomainError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} does not exist")
        self.order_id = order_id


class ConcurrencyConflict(EngineError):
    """Another writer appended to the stream since it was read; re-read and retry."""

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(f"stream {stream_id} is no longer at version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


class NoPool(EngineError):
    """No pool exists for the pair (yet): a sniper order waits for the launch, others fail."""

    def __init__(self, token_in: str, token_out: str) -> None:
        super().__init__(f"no pool for {token_in}/{token_out}")
        self.token_in = token_in
        self.token_out = token_out


class TransientError(EngineError):
    """A failure that may succeed if tried again (timeout, RPC error, no quotes)."""


class SwapRejected(EngineError):
    """The venue refused the swap for a reason retrying will not change (a program error such
    as slippage exceeded, a disabled pool, a wallet without the funds). Not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SwapExpired(EngineError):
    """The signed swap can no longer land (its blockhash's last valid height has passed) and
    the chain has no record of it: it must be signed again to be sent."""

    def __init__(self, signature: str) -> None:
        super().__init__(f"transaction {signature} expired before it landed")
        self.signature = signature


class SwapPending(EngineError):
    """The signed swap is still valid but has not landed yet: ask again after `retry_in_ms`.
    Not a failure: the order waits, without spending an attempt, until the chain can say."""

    def __init__(self, signature: str, retry_in_ms: int) -> None:
        super().__init__(f"transaction {signature} has not landed yet")
        self.signature = signature
        self.retry_in_ms = retry_in_ms


class IdempotencyKeyReused(DomainError):
    """The idempotency key already names an order with different terms."""

    def __init__(self, status: str) -> None:
        super().__init__("this idempotency key already names a different order")
        self.status = status


class RateLimited(EngineError):
    """The user submits faster than the per-user limit allows (answered 429 with Retry-After)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many orders: retry in {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class QueueUnavailable(EngineError):
    """The step queue cannot take a message now; the re-driver sends it later."""

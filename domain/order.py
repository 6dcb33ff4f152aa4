"""The order lifecycle as pure functions.

`evolve(state, event)` applies one recorded fact; `fold(events)` rebuilds the
state from the log; `decide(state, command)` returns the events a command
produces, or raises a `DomainError` and produces none. Nothing here does I/O,
reads the clock or draws random numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from domain import routing
from domain.commands import (
    AwaitLaunch,
    BuildTransaction,
    CancelOrder,
    Command,
    ExpireOrder,
    FailOrder,
    PlaceOrder,
    RecordAttemptFailure,
    RecordConfirmation,
    RecordSubmission,
    ReissueSwap,
    RequestSwap,
    RouteOrder,
)
from domain.errors import CannotCancel, DomainError, InvalidTransition
from domain.events import (
    Event,
    OrderAwaitingLaunch,
    OrderBuilding,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderFailed,
    OrderPending,
    OrderRouting,
    OrderSubmitted,
    OrderType,
    OrderWaiting,
    Quote,
    RetryScheduled,
    SwapReissued,
    SwapRequested,
)
from domain.tokens import is_native_sol

Status = Literal[
    "new",
    "pending",
    "waiting",
    "routing",
    "building",
    "submitted",
    "confirmed",
    "failed",
    "cancelled",
    "expired",
]

TERMINAL: frozenset[str] = frozenset({"confirmed", "failed", "cancelled", "expired"})

# Up to here an order can still be cancelled; once submitted the swap is out of our hands.
CANCELLABLE: frozenset[str] = frozenset({"pending", "waiting", "routing", "building"})
# A limit order expires only before it starts executing.
EXPIRABLE: frozenset[str] = frozenset({"pending", "waiting"})

# A waiting limit order records a new best price only when it beats the last one by this
# much, so re-quotes of a flat market do not fill the log.
WAITING_IMPROVEMENT = Decimal("0.001")

# status -> statuses an event may move it to. RetryScheduled keeps the status.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"pending"}),
    "pending": frozenset({"waiting", "routing", "failed", "cancelled", "expired"}),
    "waiting": frozenset({"waiting", "routing", "failed", "cancelled", "expired"}),
    # routing -> waiting: a build-time re-check finds the limit no longer met.
    "routing": frozenset({"building", "waiting", "failed", "cancelled"}),
    "building": frozenset({"submitted", "failed", "cancelled"}),
    "submitted": frozenset({"confirmed", "failed"}),
    "confirmed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}

# The status each event type records; None for events that keep the status.
STATUS_OF_EVENT: dict[type[Event], Status | None] = {
    OrderPending: "pending",
    OrderWaiting: "waiting",
    OrderAwaitingLaunch: "waiting",
    OrderCancelled: "cancelled",
    OrderExpired: "expired",
    OrderRouting: "routing",
    OrderBuilding: "building",
    OrderSubmitted: "submitted",
    OrderConfirmed: "confirmed",
    OrderFailed: "failed",
    RetryScheduled: None,
    SwapRequested: None,
    SwapReissued: None,
}

# Facts the engine records for itself; clients are not sent them.
INTERNAL_EVENTS: frozenset[type[Event]] = frozenset({SwapRequested})


class OrderState(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str = ""
    status: Status = "new"
    version: int = 0
    user_id: str = ""
    order_type: OrderType = "market"
    token_in: str = ""
    token_out: str = ""
    amount: Decimal = Decimal(0)
    limit_price: Decimal | None = None
    expires_at: datetime | None = None
    slippage_tolerance: Decimal = Decimal(0)
    best_price: Decimal | None = None
    quotes: list[Quote] = []
    chosen_dex: str | None = None
    expected_out: Decimal | None = None
    min_out: Decimal | None = None
    actions: list[str] = []
    build_quote: Quote | None = None
    swap_key: str | None = None
    # The signed transaction in flight (on-chain venues): what a re-send sends again.
    signature: str | None = None
    signed_transaction: str | None = None
    last_valid_block_height: int | None = None
    reissues: int = 0
    compute_units: int | None = None
    priority_fee: int | None = None
    tx_hash: str | None = None
    executed_price: Decimal | None = None
    amount_out: Decimal | None = None
    slot: int | None = None
    fee_paid: Decimal | None = None
    amount_in_spent: Decimal | None = None
    attempts: int = 0
    last_error: str | None = None
    explorer_url: str | None = None
    cancel_reason: str | None = None
    cancelled_by: str | None = None

    @property
    def is_priority(self) -> bool:
        """Sniper orders run in the priority lane."""
        return self.order_type == "sniper"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def chosen_quote(self) -> Quote | None:
        """The quote the swap executes on: the build's fresh one, else the routing one."""
        if self.build_quote is not None:
            return self.build_quote
        return next((q for q in self.quotes if q.dex == self.chosen_dex), None)


def status_of(event: Event) -> Status | None:
    return STATUS_OF_EVENT[type(event)]


def evolve(state: OrderState, event: Event) -> OrderState:
    """The state after `event`. Raises InvalidTransition for a fact that cannot follow."""
    new_status = status_of(event)
    if new_status is not None and new_status not in TRANSITIONS[state.status]:
        raise InvalidTransition(state.status, f"record {type(event).__name__} on")
    if new_status is None and (state.status == "new" or state.is_terminal):
        raise InvalidTransition(state.status, f"record {type(event).__name__} on")
    changes: dict[str, object] = {"version": state.version + 1}
    if new_status is not None:
        changes["status"] = new_status
    match event:
        case OrderPending():
            changes.update(
                order_id=event.order_id,
                user_id=event.user_id,
                order_type=event.order_type,
                token_in=event.token_in,
                token_out=event.token_out,
                amount=event.amount,
                limit_price=event.limit_price,
                expires_at=event.expires_at,
                slippage_tolerance=event.slippage_tolerance,
            )
        case OrderWaiting():
            # Back from routing (the build re-check failed) the old route no longer applies.
            changes.update(best_price=event.best_price, chosen_dex=None, expected_out=None, quotes=[])
        case OrderRouting():
            changes.update(
                quotes=event.quotes,
                chosen_dex=event.chosen_dex,
                expected_out=event.expected_out,
                attempts=max(state.attempts, 1),
            )
        case OrderBuilding():
            changes.update(
                min_out=event.min_out,
                expected_out=event.expected_out,
                actions=event.actions,
                chosen_dex=event.dex,
                build_quote=event.quote,
                compute_units=event.compute_units,
                priority_fee=event.priority_fee,
            )
        case SwapRequested():
            changes.update(
                swap_key=event.idempotency_key,
                signature=event.signature,
                signed_transaction=event.transaction,
                last_valid_block_height=event.last_valid_block_height,
            )
        case SwapReissued():
            changes.update(
                signature=event.signature,
                signed_transaction=event.transaction,
                last_valid_block_height=event.last_valid_block_height,
                reissues=event.reissue,
            )
            if state.status == "submitted":
                changes.update(tx_hash=event.signature)
        case OrderSubmitted():
            changes.update(tx_hash=event.tx_hash, explorer_url=event.explorer_url)
        case OrderConfirmed():
            changes.update(
                tx_hash=event.tx_hash,
                executed_price=event.executed_price,
                amount_out=event.amount_out,
                slot=event.slot,
                fee_paid=event.fee_paid,
                amount_in_spent=event.amount_in,
            )
            if event.explorer_url is not None:
                changes.update(explorer_url=event.explorer_url)
        case RetryScheduled():
            changes.update(attempts=max(state.attempts, event.attempt + 1), last_error=event.error)
        case OrderFailed():
            changes.update(attempts=max(state.attempts, event.attempts), last_error=event.error)
        case OrderCancelled():
            changes.update(cancel_reason=event.reason, cancelled_by=event.by)
    return msgspec.structs.replace(state, **changes)


def fold(events: Iterable[Event], state: OrderState | None = None) -> OrderState:
    """Replay `events` from `state` (default: before the order existed)."""
    current = state if state is not None else OrderState()
    for event in events:
        current = evolve(current, event)
    return current


def decide(state: OrderState, command: Command) -> list[Event]:
    """The events `command` produces from `state`; raises DomainError if not allowed."""
    match command:
        case PlaceOrder():
            return _place(state, command)
        case RouteOrder():
            return _route(state, command)
        case BuildTransaction():
            return _build(state, command)
        case RecordSubmission():
            _require(state, "building", "submit")
            assert state.chosen_dex is not None
            if state.signature is not None and command.tx_hash != state.signature:
                raise DomainError(
                    f"submission is for {command.tx_hash}, but the order signed {state.signature}"
                )
            link = command.explorer_url
            return [OrderSubmitted(dex=state.chosen_dex, tx_hash=command.tx_hash, explorer_url=link)]
        case RecordConfirmation():
            return _confirm(state, command)
        case RecordAttemptFailure():
            return _attempt_failed(state, command)
        case FailOrder():
            if state.status == "new" or state.is_terminal:
                raise InvalidTransition(state.status, "fail")
            return [OrderFailed(step=command.step, error=command.error, attempts=max(state.attempts, 1))]
        case CancelOrder():
            if state.status == "new":
                raise InvalidTransition(state.status, "cancel")
            if state.status not in CANCELLABLE:
                raise CannotCancel(state.status, f"cannot cancel an order that is {state.status}")
            if state.swap_key is not None:
                raise CannotCancel(
                    state.status, "the swap is already being sent; it can no longer be cancelled"
                )
            return [OrderCancelled(reason=command.reason, by=command.by)]
        case AwaitLaunch():
            if state.order_type != "sniper":
                raise DomainError(f"only sniper orders wait for a launch, not {state.order_type}")
            if state.status == "waiting":
                return []  # already waiting for it
            _require(state, "pending", "wait for a launch for")
            return [OrderAwaitingLaunch(token=command.token)]
        case RequestSwap():
            _require(state, "building", "send the swap of")
            if state.swap_key is not None:
                raise DomainError("the swap was already requested")
            assert state.chosen_dex is not None
            return [
                SwapRequested(
                    dex=state.chosen_dex,
                    idempotency_key=command.idempotency_key,
                    signature=command.signature,
                    transaction=command.transaction,
                    last_valid_block_height=command.last_valid_block_height,
                )
            ]
        case ReissueSwap():
            return _reissue(state, command)
        case ExpireOrder():
            if state.status not in EXPIRABLE or state.expires_at is None:
                raise InvalidTransition(state.status, "expire")
            if command.now < state.expires_at:
                raise DomainError(f"order expires at {state.expires_at.isoformat()}, not yet")
            return [OrderExpired(expires_at=state.expires_at)]
    raise DomainError(f"unknown command {type(command).__name__}")


def _require(state: OrderState, status: Status, action: str) -> None:
    if state.status != status:
        raise InvalidTransition(state.status, action)


def _place(state: OrderState, cmd: PlaceOrder) -> list[Event]:
    _require(state, "new", "place")
    if cmd.order_type == "limit" and cmd.limit_price is None:
        raise DomainError("a limit order needs a limit price")
    if cmd.expires_at is not None and cmd.order_type != "limit":
        raise DomainError("only limit orders expire")
    return [
        OrderPending(
            order_id=cmd.order_id,
            user_id=cmd.user_id,
            order_type=cmd.order_type,
            token_in=cmd.token_in,
            token_out=cmd.token_out,
            amount=cmd.amount,
            slippage_tolerance=cmd.slippage_tolerance,
            limit_price=cmd.limit_price,
            expires_at=cmd.expires_at,
        )
    ]


def _route(state: OrderState, cmd: RouteOrder) -> list[Event]:
    """Route a pending or waiting order; a limit order below its price waits instead.

    Returns no events when a waiting order is still not marketable and its best
    price has not improved enough to be worth recording.
    """
    if state.status not in ("pending", "waiting"):
        raise InvalidTransition(state.status, "route")
    if not cmd.quotes:
        raise DomainError("cannot route without a quote")
    quotes = [routing.with_expected_out(q, state.amount) for q in cmd.quotes]
    best, reason = routing.choose_best(quotes, state.amount)
    if state.order_type == "limit" and state.limit_price is not None:
        achievable = routing.net_price(best, state.amount)
        if achievable < state.limit_price:
            if state.best_price is not None and achievable < state.best_price * (1 + WAITING_IMPROVEMENT):
                return []
            return [OrderWaiting(best_dex=best.dex, best_price=achievable, limit_price=state.limit_price)]
    return [
        OrderRouting(
            quotes=quotes,
            chosen_dex=best.dex,
            expected_out=best.expected_out,
            reason=reason,
            unavailable=cmd.unavailable,
        )
    ]


def _build(state: OrderState, cmd: BuildTransaction) -> list[Event]:
    """Build the swap; with fresh quotes, a limit order no longer met goes back to waiting."""
    _require(state, "routing", "build")
    assert state.chosen_dex is not None and state.expected_out is not None
    dex, expected, quote = state.chosen_dex, state.expected_out, None
    if cmd.fresh_quotes:
        fresh = [routing.with_expected_out(q, state.amount) for q in cmd.fresh_quotes]
        best, _ = routing.choose_best(fresh, state.amount)
        achievable = routing.net_price(best, state.amount)
        if state.limit_price is not None and achievable < state.limit_price:
            return [OrderWaiting(best_dex=best.dex, best_price=achievable, limit_price=state.limit_price)]
        dex, expected, quote = best.dex, best.expected_out, best
    actions: list[str] = []
    if is_native_sol(state.token_in):
        actions.append("wrap_sol")
    actions.append(f"swap:{dex}")
    if is_native_sol(state.token_out):
        actions.append("unwrap_sol")
    return [
        OrderBuilding(
            dex=dex,
            expected_out=expected,
            min_out=routing.minimum_out(expected, state.slippage_tolerance),
            actions=actions,
            quote=quote,
            compute_units=cmd.compute_units,
            priority_fee=cmd.priority_fee,
        )
    ]


def _reissue(state: OrderState, cmd: ReissueSwap) -> list[Event]:
    if state.status not in ("building", "submitted") or state.swap_key is None:
        raise InvalidTransition(state.status, "reissue the swap of")
    if state.signature != cmd.previous_signature:
        # Another copy of the step reissued it already: this one decided on a stale read.
        raise DomainError(f"the swap in flight is {state.signature}, not {cmd.previous_signature}")
    if state.reissues >= cmd.max_reissues:
        return [
            OrderFailed(
                step=cmd.step,
                error=(
                    f"the transaction expired without landing {state.reissues + 1} times "
                    f"(last {cmd.previous_signature}); gave up"
                ),
                attempts=max(state.attempts, 1),
            )
        ]
    return [
        SwapReissued(
            previous_signature=cmd.previous_signature,
            signature=cmd.signature,
            transaction=cmd.transaction,
            last_valid_block_height=cmd.last_valid_block_height,
            reissue=state.reissues + 1,
        )
    ]


def _confirm(state: OrderState, cmd: RecordConfirmation) -> list[Event]:
    _require(state, "submitted", "confirm")
    assert state.min_out is not None
    if cmd.tx_hash != state.tx_hash:
        raise DomainError(f"confirmation is for {cmd.tx_hash}, but the order submitted {state.tx_hash}")
    if cmd.amount_out < state.min_out:
        return [
            OrderFailed(
                step="confirm",
                error=(
                    f"slippage exceeded: swap would return {cmd.amount_out} "
                    f"{state.token_out}, below the minimum {state.min_out}"
                ),
                attempts=max(state.attempts, 1),
            )
        ]
    return [
        OrderConfirmed(
            tx_hash=cmd.tx_hash,
            executed_price=cmd.executed_price,
            amount_out=cmd.amount_out,
            slot=cmd.slot,
            fee_paid=cmd.fee_paid,
            amount_in=cmd.amount_in,
            explorer_url=cmd.explorer_url,
        )
    ]


def _attempt_failed(state: OrderState, cmd: RecordAttemptFailure) -> list[Event]:
    if state.status == "new" or state.is_terminal:
        raise InvalidTransition(state.status, "retry")
    if cmd.attempt >= cmd.max_attempts:
        # A message redelivered after an infrastructure error can arrive with a higher
        # attempt number; the order still records no more than the configured maximum.
        return [
            OrderFailed(
                step=cmd.step,
                error=f"{cmd.error} (gave up after {cmd.max_attempts} attempts)",
                attempts=cmd.max_attempts,
            )
        ]
    return [RetryScheduled(step=cmd.step, attempt=cmd.attempt, error=cmd.error, delay_ms=cmd.delay_ms)]

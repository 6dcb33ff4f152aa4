"""The order lifecycle through the pure `decide` + `fold`: legal paths, refusals, outcomes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.memory_event_store import InMemoryEventStore
from domain import routing
from domain.commands import (
    BuildTransaction,
    CancelOrder,
    Command,
    ExpireOrder,
    FailOrder,
    RecordAttemptFailure,
    RecordConfirmation,
    RecordSubmission,
    RequestSwap,
    RouteOrder,
)
from domain.errors import CannotCancel, DomainError, InvalidTransition
from domain.events import (
    Event,
    OrderBuilding,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderFailed,
    OrderPending,
    OrderRouting,
    OrderSubmitted,
    OrderWaiting,
    RetryScheduled,
    SwapRequested,
    decode_event,
)
from domain.order import TERMINAL, OrderState, Status, decide, evolve, fold
from domain.services.handling import handle
from tests.factories import new_order_id, place_order, quotes

TX_HASH = "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW"
MAX_ATTEMPTS = 3


def apply(state: OrderState, command: Command) -> tuple[OrderState, list[Event]]:
    """Decide, then fold what was decided onto the state: how the engine changes an order."""
    events = decide(state, command)
    return fold(events, state), events


def place(**overrides: object) -> OrderState:
    state, _ = apply(OrderState(), place_order(new_order_id(), **overrides))
    return state


def route(state: OrderState) -> OrderState:
    return apply(state, RouteOrder(command_id="route", quotes=quotes()))[0]


def build(state: OrderState) -> OrderState:
    return apply(state, BuildTransaction(command_id="build"))[0]


def submit(state: OrderState) -> OrderState:
    return apply(state, RecordSubmission(command_id="submit", tx_hash=TX_HASH))[0]


def confirmation(amount_out: Decimal) -> RecordConfirmation:
    return RecordConfirmation(
        command_id="confirm",
        tx_hash=TX_HASH,
        executed_price=amount_out / Decimal("1.5"),
        amount_out=amount_out,
    )


def confirm(state: OrderState) -> OrderState:
    assert state.expected_out is not None
    return apply(state, confirmation(state.expected_out))[0]


def attempt_failure(attempt: int, max_attempts: int = MAX_ATTEMPTS) -> RecordAttemptFailure:
    return RecordAttemptFailure(
        command_id=f"fail-{attempt}",
        step="route",
        attempt=attempt,
        max_attempts=max_attempts,
        error="rpc timeout",
        delay_ms=500 * attempt,
    )


def state_in(status: Status) -> OrderState:
    """An order driven through the legal path to `status`."""
    if status == "new":
        return OrderState()
    state = place()
    if status == "failed":
        return apply(state, FailOrder(command_id="fail", step="route", error="gave up"))[0]
    if status == "cancelled":
        return apply(state, CancelOrder(command_id="cancel"))[0]
    if status in ("waiting", "expired"):
        expires = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        limit = place(order_type="limit", limit_price=Decimal("1000"), expires_at=expires)
        state = apply(limit, RouteOrder(command_id="r", quotes=quotes()))[0]
        if status == "expired":
            state = apply(state, ExpireOrder(command_id="e", now=expires))[0]
        return state
    for step, reached in (
        (route, "routing"),
        (build, "building"),
        (submit, "submitted"),
        (confirm, "confirmed"),
    ):
        if state.status == status:
            break
        state = step(state)
        assert state.status == reached
    assert state.status == status
    return state


def one_of_each_command() -> dict[str, Command]:
    return {
        "PlaceOrder": place_order(new_order_id()),
        "RouteOrder": RouteOrder(command_id="route", quotes=quotes()),
        "BuildTransaction": BuildTransaction(command_id="build"),
        "RecordSubmission": RecordSubmission(command_id="submit", tx_hash=TX_HASH),
        "RecordConfirmation": confirmation(Decimal("1000")),
        "RecordAttemptFailure": attempt_failure(1),
        "FailOrder": FailOrder(command_id="fail", step="route", error="operator cancelled"),
    }


ALL_STATUSES: tuple[Status, ...] = (
    "new",
    "pending",
    "routing",
    "building",
    "submitted",
    "confirmed",
    "failed",
)

LEGAL: dict[str, set[str]] = {
    "new": {"PlaceOrder"},
    "pending": {"RouteOrder", "RecordAttemptFailure", "FailOrder"},
    "routing": {"BuildTransaction", "RecordAttemptFailure", "FailOrder"},
    "building": {"RecordSubmission", "RecordAttemptFailure", "FailOrder"},
    "submitted": {"RecordConfirmation", "RecordAttemptFailure", "FailOrder"},
    "confirmed": set(),
    "failed": set(),
}

ILLEGAL_CASES = [
    pytest.param(status, name, id=f"{status}-{name}")
    for status in ALL_STATUSES
    for name in one_of_each_command()
    if name not in LEGAL[status]
]

LEGAL_CASES = [
    pytest.param(status, name, id=f"{status}-{name}")
    for status in ALL_STATUSES
    for name in sorted(LEGAL[status])
]


# --- the happy path -----------------------------------------------------------------


def test_place_order_records_pending_with_the_request() -> None:
    oid = new_order_id()
    state, events = apply(
        OrderState(), place_order(oid, amount=Decimal("2"), slippage_tolerance=Decimal("0.02"))
    )
    assert events == [
        OrderPending(
            order_id=oid,
            user_id="user-1",
            order_type="market",
            token_in="SOL",
            token_out="USDC",
            amount=Decimal("2"),
            slippage_tolerance=Decimal("0.02"),
        )
    ]
    assert (state.status, state.version, state.order_id, state.amount) == ("pending", 1, oid, Decimal("2"))


def test_route_chooses_the_best_net_quote_and_records_all_quotes() -> None:
    state, events = apply(place(), RouteOrder(command_id="route", quotes=quotes()))
    assert [type(e) for e in events] == [OrderRouting]
    routed = events[0]
    assert isinstance(routed, OrderRouting)
    expected = routing.expected_out(quotes()[0], Decimal("1.5"))
    assert (routed.chosen_dex, routed.expected_out) == ("raydium", expected)
    assert [q.dex for q in routed.quotes] == ["raydium", "meteora"]
    assert all(q.expected_out > 0 for q in routed.quotes)
    assert (state.status, state.chosen_dex, state.expected_out, state.version) == (
        "routing",
        "raydium",
        expected,
        2,
    )


def test_build_sets_min_out_from_expected_and_slippage() -> None:
    routed = route(place(slippage_tolerance=Decimal("0.01")))
    state, events = apply(routed, BuildTransaction(command_id="build"))
    assert routed.expected_out is not None
    assert events == [
        OrderBuilding(
            dex="raydium",
            expected_out=routed.expected_out,
            min_out=routing.minimum_out(routed.expected_out, Decimal("0.01")),
            actions=["wrap_sol", "swap:raydium"],
        )
    ]
    assert state.status == "building"
    assert state.min_out is not None and state.min_out < routed.expected_out


def test_submission_records_the_tx_hash_on_the_chosen_dex() -> None:
    state, events = apply(build(route(place())), RecordSubmission(command_id="s", tx_hash=TX_HASH))
    assert events == [OrderSubmitted(dex="raydium", tx_hash=TX_HASH)]
    assert (state.status, state.tx_hash, state.explorer_url) == ("submitted", TX_HASH, None)


def test_submission_records_the_explorer_link_the_venue_gave() -> None:
    link = f"https://explorer.solana.com/tx/{TX_HASH}?cluster=devnet"
    command = RecordSubmission(command_id="s", tx_hash=TX_HASH, explorer_url=link)
    building = build(route(place()))
    state, events = apply(building, command)
    assert events == [OrderSubmitted(dex="raydium", tx_hash=TX_HASH, explorer_url=link)]
    assert state.explorer_url == link
    # Submissions logged before links existed decode without one.
    old = decode_event(f'{{"type": "OrderSubmitted", "dex": "raydium", "tx_hash": "{TX_HASH}"}}')
    assert (
        old == OrderSubmitted(dex="raydium", tx_hash=TX_HASH) and evolve(building, old).explorer_url is None
    )


def test_happy_path_goes_pending_routing_building_submitted_confirmed() -> None:
    statuses: list[str] = []
    state = place()
    statuses.append(state.status)
    for step in (route, build, submit, confirm):
        state = step(state)
        statuses.append(state.status)
    assert statuses == ["pending", "routing", "building", "submitted", "confirmed"]
    assert state.version == 5
    assert state.is_terminal
    assert (state.tx_hash, state.amount_out) == (TX_HASH, state.expected_out)


def test_happy_path_state_equals_fold_of_all_its_events() -> None:
    state = OrderState()
    log: list[Event] = []
    for command in (
        place_order(new_order_id()),
        RouteOrder(command_id="r", quotes=quotes()),
        BuildTransaction(command_id="b"),
        RecordSubmission(command_id="s", tx_hash=TX_HASH),
    ):
        state, events = apply(state, command)
        log.extend(events)
    assert state.expected_out is not None
    state, events = apply(state, confirmation(state.expected_out))
    log.extend(events)
    assert [type(e) for e in log] == [
        OrderPending,
        OrderRouting,
        OrderBuilding,
        OrderSubmitted,
        OrderConfirmed,
    ]
    assert fold(log) == state


def test_confirmation_exactly_at_min_out_is_accepted() -> None:
    submitted = submit(build(route(place())))
    assert submitted.min_out is not None
    state, events = apply(submitted, confirmation(submitted.min_out))
    assert [type(e) for e in events] == [OrderConfirmed]
    assert (state.status, state.amount_out) == ("confirmed", submitted.min_out)


# --- refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(("status", "command_name"), ILLEGAL_CASES)
def test_illegal_command_raises_invalid_transition_and_decides_no_events(
    status: Status, command_name: str
) -> None:
    state = state_in(status)
    command = one_of_each_command()[command_name]
    with pytest.raises(InvalidTransition) as raised:
        decide(state, command)
    assert isinstance(raised.value, DomainError)
    assert raised.value.status == status


@pytest.mark.parametrize(("status", "command_name"), LEGAL_CASES)
def test_legal_command_decides_at_least_one_event(status: Status, command_name: str) -> None:
    # The complement of the illegal matrix: proves the refusals above are not blanket refusals.
    events = decide(state_in(status), one_of_each_command()[command_name])
    assert len(events) >= 1


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_state_rejects_every_command(status: Status) -> None:
    state = state_in(status)
    refused = []
    for name, command in one_of_each_command().items():
        with pytest.raises(InvalidTransition):
            decide(state, command)
        refused.append(name)
    assert len(refused) == 7


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_state_rejects_every_event_in_evolve(status: Status) -> None:
    state = state_in(status)
    facts: list[Event] = [
        OrderPending(
            order_id="x",
            user_id="u",
            order_type="market",
            token_in="SOL",
            token_out="USDC",
            amount=Decimal(1),
            slippage_tolerance=Decimal("0.01"),
        ),
        OrderRouting(quotes=quotes(), chosen_dex="raydium", expected_out=Decimal(1), reason="r"),
        OrderBuilding(dex="raydium", expected_out=Decimal(1), min_out=Decimal(1), actions=[]),
        OrderSubmitted(dex="raydium", tx_hash=TX_HASH),
        OrderConfirmed(tx_hash=TX_HASH, executed_price=Decimal(1), amount_out=Decimal(1)),
        RetryScheduled(step="confirm", attempt=1, error="e", delay_ms=1),
        OrderFailed(step="confirm", error="e", attempts=1),
    ]
    for fact in facts:
        with pytest.raises(InvalidTransition):
            evolve(state, fact)


def test_route_without_quotes_is_a_domain_error() -> None:
    with pytest.raises(DomainError, match="quote"):
        decide(place(), RouteOrder(command_id="r", quotes=[]))


def test_evolve_refuses_a_fact_that_skips_a_status() -> None:
    with pytest.raises(InvalidTransition):
        evolve(place(), OrderSubmitted(dex="raydium", tx_hash=TX_HASH))


# --- limit orders -------------------------------------------------------------------


def test_limit_order_below_limit_price_waits_with_the_best_price_seen() -> None:
    # Best net for 1.5 SOL is about 149.5 USDC/SOL: a limit of 160 cannot be met yet.
    state, events = apply(
        place(order_type="limit", limit_price=Decimal("160")), RouteOrder(command_id="r", quotes=quotes())
    )
    assert [type(e) for e in events] == [OrderWaiting]
    waiting = events[0]
    assert isinstance(waiting, OrderWaiting)
    assert waiting.limit_price == Decimal("160") and waiting.best_price < Decimal("160")
    assert state.status == "waiting" and state.best_price == waiting.best_price


def test_waiting_order_records_a_new_best_price_only_when_it_improves() -> None:
    waiting, _ = apply(
        place(order_type="limit", limit_price=Decimal("160")), RouteOrder(command_id="r1", quotes=quotes())
    )
    _, same = apply(waiting, RouteOrder(command_id="r2", quotes=quotes()))
    assert same == []
    _, better = apply(waiting, RouteOrder(command_id="r3", quotes=quotes(raydium="155")))
    assert [type(e) for e in better] == [OrderWaiting]


def test_waiting_order_routes_once_the_price_reaches_the_limit() -> None:
    waiting, _ = apply(
        place(order_type="limit", limit_price=Decimal("160")), RouteOrder(command_id="r1", quotes=quotes())
    )
    state, events = apply(waiting, RouteOrder(command_id="r2", quotes=quotes(raydium="170")))
    assert [type(e) for e in events] == [OrderRouting]
    assert state.status == "routing" and state.chosen_dex == "raydium"


def test_cancel_is_allowed_until_submission_and_refused_after() -> None:
    for state in (place(), route(place()), build(route(place()))):
        cancelled, events = apply(state, CancelOrder(command_id="c", by="user-1"))
        assert [type(e) for e in events] == [OrderCancelled]
        assert cancelled.status == "cancelled" and cancelled.is_terminal
        assert (cancelled.cancel_reason, cancelled.cancelled_by) == ("cancelled by the user", "user-1")
    with pytest.raises(CannotCancel) as refused:
        decide(submit(build(route(place()))), CancelOrder(command_id="c"))
    assert refused.value.status == "submitted"


def test_cancel_is_refused_once_the_swap_is_requested() -> None:
    requested, events = apply(build(route(place())), RequestSwap(command_id="s", idempotency_key="k"))
    assert [type(e) for e in events] == [SwapRequested]
    assert requested.status == "building" and requested.swap_key == "k"
    with pytest.raises(CannotCancel):
        decide(requested, CancelOrder(command_id="c"))
    with pytest.raises(DomainError):  # requested once only
        decide(requested, RequestSwap(command_id="s2", idempotency_key="k"))
    assert submit(requested).status == "submitted"


def test_limit_order_expires_only_once_its_time_has_come() -> None:
    expires = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    order = place(order_type="limit", limit_price=Decimal("160"), expires_at=expires)
    with pytest.raises(DomainError):
        decide(order, ExpireOrder(command_id="e", now=datetime(2026, 11, 24, 11, 59, tzinfo=UTC)))
    expired, events = apply(order, ExpireOrder(command_id="e", now=expires))
    assert [type(e) for e in events] == [OrderExpired] and expired.status == "expired"
    with pytest.raises(InvalidTransition):  # a market order has no expiry
        decide(place(), ExpireOrder(command_id="e", now=expires))


def test_limit_order_at_or_above_limit_price_proceeds_to_routing() -> None:
    best = routing.with_expected_out(quotes()[0], Decimal("1.5"))
    reachable = routing.net_price(best, Decimal("1.5"))
    state, events = apply(
        place(order_type="limit", limit_price=reachable), RouteOrder(command_id="r", quotes=quotes())
    )
    assert [type(e) for e in events] == [OrderRouting]
    assert state.status == "routing"


def test_market_order_ignores_how_low_the_price_is() -> None:
    state, events = apply(place(), RouteOrder(command_id="r", quotes=quotes(raydium="1", meteora="1")))
    assert [type(e) for e in events] == [OrderRouting]
    assert state.status == "routing"


# --- slippage at confirmation -------------------------------------------------------


def test_confirmation_below_min_out_fails_with_a_slippage_error() -> None:
    submitted = submit(build(route(place())))
    assert submitted.min_out is not None
    short = submitted.min_out - Decimal("0.000001")
    state, events = apply(submitted, confirmation(short))
    assert [type(e) for e in events] == [OrderFailed]
    failed = events[0]
    assert isinstance(failed, OrderFailed)
    assert failed.step == "confirm"
    assert "slippage" in failed.error
    assert state.status == "failed"
    assert state.amount_out is None


# --- transient failures -------------------------------------------------------------


def test_attempt_failure_below_max_schedules_a_retry_with_attempt_error_and_delay() -> None:
    pending = place()
    state, events = apply(pending, attempt_failure(1))
    assert events == [RetryScheduled(step="route", attempt=1, error="rpc timeout", delay_ms=500)]
    assert state.status == "pending"
    assert state.version == pending.version + 1
    assert state.last_error == "rpc timeout"
    assert state.attempts == 2  # the retry about to happen is the second attempt


def test_attempt_failure_at_max_fails_the_order_and_stores_the_attempts() -> None:
    state = place()
    state, _ = apply(state, attempt_failure(1))
    state, _ = apply(state, attempt_failure(2))
    state, events = apply(state, attempt_failure(MAX_ATTEMPTS))
    assert [type(e) for e in events] == [OrderFailed]
    failed = events[0]
    assert isinstance(failed, OrderFailed)
    assert (failed.step, failed.attempts) == ("route", MAX_ATTEMPTS)
    assert "rpc timeout" in failed.error
    assert (state.status, state.attempts) == ("failed", MAX_ATTEMPTS)


def test_attempt_failure_past_max_never_stores_more_than_max_attempts() -> None:
    # A redelivered message can carry an attempt number past the max.
    state, events = apply(place(), attempt_failure(MAX_ATTEMPTS + 2))
    assert [type(e) for e in events] == [OrderFailed]
    assert state.status == "failed"
    assert state.attempts == MAX_ATTEMPTS


def test_fail_order_from_a_live_status_records_the_step_and_error() -> None:
    state, events = apply(route(place()), FailOrder(command_id="f", step="build", error="operator cancelled"))
    assert events == [OrderFailed(step="build", error="operator cancelled", attempts=1)]
    assert (state.status, state.last_error) == ("failed", "operator cancelled")


# --- building: wrapping native SOL --------------------------------------------------


def built_actions(token_in: str, token_out: str) -> list[str]:
    return build(route(place(token_in=token_in, token_out=token_out))).actions


def test_building_wraps_sol_when_selling_sol() -> None:
    actions = built_actions("SOL", "USDC")
    assert actions == ["wrap_sol", "swap:raydium"]


def test_building_unwraps_sol_when_buying_sol() -> None:
    actions = built_actions("USDC", "SOL")
    assert actions == ["swap:raydium", "unwrap_sol"]


def test_building_neither_wraps_nor_unwraps_between_spl_tokens() -> None:
    actions = built_actions("USDC", "USDT")
    assert actions == ["swap:raydium"]
    assert not {"wrap_sol", "unwrap_sol"} & set(actions)


# --- a refused command appends nothing ----------------------------------------------


def test_refused_command_appends_no_event_to_the_stream() -> None:
    async def scenario() -> tuple[int, int]:
        store = InMemoryEventStore()
        oid = new_order_id()
        await handle(store, oid, place_order(oid), actor="test")
        before = len(await store.read_stream(oid))
        with pytest.raises(InvalidTransition):
            await handle(store, oid, BuildTransaction(command_id="b"), actor="test")
        return before, len(await store.read_stream(oid))

    before, after = asyncio.run(scenario())
    assert (before, after) == (1, 1)


def test_confirmation_for_another_transaction_is_refused() -> None:
    submitted = submit(build(route(place())))
    wrong = RecordConfirmation(
        command_id="c", tx_hash="not-the-submitted-one", executed_price=Decimal(150), amount_out=Decimal(225)
    )
    with pytest.raises(DomainError):
        decide(submitted, wrong)


def test_build_recheck_sends_a_limit_order_back_to_waiting_when_the_price_moved_away() -> None:
    routed = route(place(order_type="limit", limit_price=Decimal("140")))
    assert routed.status == "routing"
    state, events = apply(
        routed, BuildTransaction(command_id="b", fresh_quotes=quotes(raydium="120", meteora="119"))
    )
    assert [type(e) for e in events] == [OrderWaiting]
    assert state.status == "waiting" and state.chosen_dex is None and state.best_price is not None
    assert state.best_price < Decimal("140")


def test_build_recheck_builds_on_the_fresh_best_quote_when_the_limit_still_holds() -> None:
    routed = route(place(order_type="limit", limit_price=Decimal("140")))
    fresh = quotes(raydium="141", meteora="160")  # meteora is now the better venue
    state, events = apply(routed, BuildTransaction(command_id="b", fresh_quotes=fresh))
    assert [type(e) for e in events] == [OrderBuilding]
    assert state.chosen_dex == "meteora" and state.chosen_quote is not None
    assert state.chosen_quote.price == Decimal("160")
    assert state.min_out == routing.minimum_out(state.chosen_quote.expected_out, Decimal("0.01"))

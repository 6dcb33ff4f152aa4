"""Properties of the pure order domain under random command sequences and random quotes.

(1) A rule-based state machine throws random commands at `decide` + `evolve` (a refused
command, a DomainError, counts as "no events") and checks the lifecycle invariants after
every step. (2) Routing properties over random quotes, amounts and slippage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from domain import routing
from domain.commands import (
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
from domain.errors import DomainError
from domain.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderFailed,
    OrderRouting,
    OrderSubmitted,
    OrderType,
    Quote,
    Step,
    SwapReissued,
    SwapRequested,
)
from domain.order import TRANSITIONS, OrderState, decide, evolve, fold, status_of

MAX_ATTEMPTS = 3
MAX_REISSUES = 2
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DEX_NAMES = ("raydium", "meteora", "orca", "phoenix")
PAIRS = (("SOL", "USDC"), ("USDC", "SOL"), ("USDC", "USDT"), ("BONK", "SOL"), ("JUP", "RAY"))

SETTINGS = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Magnitudes stay realistic: price * liquidity below ~1e11 keeps 12-decimal outputs
# inside Decimal's default 28-digit context.
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10_000), places=4)
fees = st.decimals(min_value=Decimal(0), max_value=Decimal("0.01"), places=4)
liquidities = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10_000_000), places=2)
amounts = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100_000), places=3)
slippages = st.decimals(min_value=Decimal(0), max_value=Decimal("0.5"), places=4)
STEPS: tuple[Step, ...] = ("route", "build", "submit", "confirm")
ORDER_TYPES: tuple[OrderType, ...] = ("market", "limit", "sniper")
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
steps = st.sampled_from(STEPS)
tx_hashes = st.text(alphabet=BASE58, min_size=1, max_size=88)


@st.composite
def quote_lists(draw: st.DrawFn) -> list[Quote]:
    names = draw(st.lists(st.sampled_from(DEX_NAMES), min_size=1, max_size=len(DEX_NAMES), unique=True))
    return [Quote(dex=n, price=draw(prices), fee=draw(fees), liquidity=draw(liquidities)) for n in names]


@st.composite
def place_commands(draw: st.DrawFn) -> PlaceOrder:
    token_in, token_out = draw(st.sampled_from(PAIRS))
    order_type = draw(st.sampled_from(ORDER_TYPES))
    return PlaceOrder(
        command_id="place",
        order_id="order-1",
        user_id="user-1",
        order_type=order_type,
        token_in=token_in,
        token_out=token_out,
        amount=draw(amounts),
        slippage_tolerance=draw(slippages),
        limit_price=draw(prices) if order_type == "limit" else None,
        expires_at=T0 + timedelta(seconds=draw(st.integers(1, 3600))) if order_type == "limit" else None,
    )


TERMINAL_EVENTS = (OrderConfirmed, OrderFailed, OrderCancelled, OrderExpired)


class OrderLifecycle(RuleBasedStateMachine):
    """Random commands against one order; the invariants below hold after every step."""

    # Workers may report attempt numbers beyond the max (a redelivered message).
    attempt_ceiling = MAX_ATTEMPTS + 3

    def __init__(self) -> None:
        super().__init__()
        self.state = OrderState()
        self.log: list[Event] = []
        self.versions: list[int] = []
        self.status_changes: list[tuple[str, str]] = []
        self.first_terminal: OrderState | None = None
        self.confirmations: list[tuple[Decimal, Decimal | None]] = []

    def run(self, command: Command) -> None:
        try:
            events = decide(self.state, command)
        except DomainError:
            events = []
        for event in events:
            before = self.state
            self.state = evolve(before, event)
            self.log.append(event)
            self.versions.append(self.state.version)
            self.status_changes.append((before.status, self.state.status))
            if isinstance(event, OrderConfirmed):
                self.confirmations.append((event.amount_out, before.min_out))
            if status_of(event) is None:
                assert self.state.status == before.status
        if self.first_terminal is None and self.state.is_terminal:
            self.first_terminal = self.state

    # --- rules: every command is offered in every state ---------------------------

    @rule(command=place_commands())
    def place(self, command: PlaceOrder) -> None:
        self.run(command)

    @rule(quotes=quote_lists())
    def route(self, quotes: list[Quote]) -> None:
        self.run(RouteOrder(command_id="route", quotes=quotes))

    @rule(quotes=quote_lists())
    def build_with_fresh_quotes(self, quotes: list[Quote]) -> None:
        """The build-time re-check: a limit order no longer met goes back to waiting."""
        self.run(BuildTransaction(command_id="build-fresh", fresh_quotes=quotes))

    @rule()
    def build(self) -> None:
        self.run(BuildTransaction(command_id="build"))

    @rule(tx_hash=tx_hashes)
    def record_submission(self, tx_hash: str) -> None:
        self.run(RecordSubmission(command_id="submit", tx_hash=tx_hash))

    @rule(
        factor=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.05"), places=4),
        executed_price=prices,
    )
    def record_confirmation(self, factor: Decimal, executed_price: Decimal) -> None:
        # Around the expected output so both sides of min_out come up.
        amount_out = (self.state.expected_out or Decimal(1)) * factor
        self.run(
            RecordConfirmation(
                command_id="confirm", tx_hash="tx", executed_price=executed_price, amount_out=amount_out
            )
        )

    @rule(data=st.data(), step=steps, delay_ms=st.integers(min_value=0, max_value=60_000))
    def attempt_failure(self, data: st.DataObject, step: Step, delay_ms: int) -> None:
        attempt = data.draw(st.integers(min_value=1, max_value=self.attempt_ceiling), label="attempt")
        self.run(
            RecordAttemptFailure(
                command_id=f"attempt-{attempt}",
                step=step,
                attempt=attempt,
                max_attempts=MAX_ATTEMPTS,
                error="rpc timeout",
                delay_ms=delay_ms,
            )
        )

    @rule()
    def request_swap(self) -> None:
        self.run(RequestSwap(command_id="swap", idempotency_key="order-1:swap"))

    @rule(signature=tx_hashes, height=st.integers(min_value=0, max_value=10_000))
    def request_signed_swap(self, signature: str, height: int) -> None:
        """An on-chain swap: its signature is recorded before it is sent."""
        self.run(
            RequestSwap(
                command_id="swap",
                idempotency_key="order-1:swap",
                signature=signature,
                transaction="AQID",
                last_valid_block_height=height,
            )
        )

    @rule(data=st.data(), signature=tx_hashes, step=steps)
    def reissue_swap(self, data: st.DataObject, signature: str, step: Step) -> None:
        """The signed swap expired unlanded (or a stale copy of a step thinks so)."""
        previous = data.draw(st.sampled_from([self.state.signature or "none", "stale"]), label="previous")
        self.run(
            ReissueSwap(
                command_id="reissue",
                step=step,
                previous_signature=previous,
                signature=signature,
                transaction="AQID",
                last_valid_block_height=1,
                max_reissues=MAX_REISSUES,
            )
        )

    @rule()
    def cancel(self) -> None:
        self.run(CancelOrder(command_id="cancel", by="user-1"))

    @rule(seconds=st.integers(min_value=0, max_value=7200))
    def expire(self, seconds: int) -> None:
        """The expiry job at some instant; before expiresAt it must be refused."""
        now = T0 + timedelta(seconds=seconds)
        before = self.state
        self.run(ExpireOrder(command_id="expire", now=now))
        if self.state.status == "expired" and before.status != "expired":
            assert before.expires_at is not None and before.expires_at <= now

    @rule(step=steps)
    def fail(self, step: Step) -> None:
        self.run(FailOrder(command_id="fail", step=step, error="operator cancelled"))

    @rule(
        quotes=quote_lists(), tx_hash=tx_hashes, factor=st.decimals(Decimal("0.9"), Decimal("1.05"), places=4)
    )
    def advance(self, quotes: list[Quote], tx_hash: str, factor: Decimal) -> None:
        """The legal next command for the current status, so runs reach the later statuses."""
        next_command: dict[str, Command] = {
            "pending": RouteOrder(command_id="route", quotes=quotes),
            "waiting": RouteOrder(command_id="route", quotes=quotes),  # a price tick
            "routing": BuildTransaction(command_id="build"),
            "building": RecordSubmission(command_id="submit", tx_hash=self.state.signature or tx_hash)
            if self.state.swap_key
            else RequestSwap(command_id="swap", idempotency_key="order-1:swap"),
            "submitted": RecordConfirmation(
                command_id="confirm",
                tx_hash=self.state.tx_hash or tx_hash,
                executed_price=Decimal(1),
                amount_out=(self.state.expected_out or Decimal(1)) * factor,
            ),
        }
        if self.state.status == "new":
            self.place(
                PlaceOrder(
                    command_id="place",
                    order_id="order-1",
                    user_id="user-1",
                    order_type="market",
                    token_in="SOL",
                    token_out="USDC",
                    amount=Decimal("1.5"),
                    slippage_tolerance=Decimal("0.01"),
                )
            )
        elif self.state.status in next_command:
            self.run(next_command[self.state.status])

    # --- invariants ---------------------------------------------------------------

    @invariant()
    def versions_are_contiguous_from_one(self) -> None:
        assert self.versions == list(range(1, len(self.log) + 1))
        assert self.state.version == len(self.log)

    @invariant()
    def every_status_change_is_a_listed_transition(self) -> None:
        for before, after in self.status_changes:
            assert before == after or after in TRANSITIONS[before], (before, after)

    @invariant()
    def a_terminal_state_never_changes(self) -> None:
        if self.first_terminal is not None:
            assert self.state == self.first_terminal

    @invariant()
    def at_most_one_terminal_event_is_recorded(self) -> None:
        assert sum(isinstance(e, TERMINAL_EVENTS) for e in self.log) <= 1

    @invariant()
    def cancelled_and_submitted_are_never_both_recorded(self) -> None:
        kinds = {type(e) for e in self.log}
        assert not {OrderCancelled, OrderSubmitted} <= kinds
        assert not {OrderCancelled, SwapRequested} <= kinds

    @invariant()
    def reissues_never_exceed_the_configured_max(self) -> None:
        assert self.state.reissues <= MAX_REISSUES
        assert sum(isinstance(e, SwapReissued) for e in self.log) == self.state.reissues

    @invariant()
    def the_submitted_and_confirmed_swap_is_the_last_one_signed(self) -> None:
        signed: str | None = None
        for event in self.log:
            if isinstance(event, SwapRequested | SwapReissued) and event.signature is not None:
                signed = event.signature
            elif isinstance(event, OrderSubmitted | OrderConfirmed) and signed is not None:
                assert event.tx_hash == signed
        if self.state.status in ("submitted", "confirmed") and self.state.signature is not None:
            assert self.state.tx_hash == self.state.signature

    @invariant()
    def a_swap_is_reissued_only_after_it_was_requested(self) -> None:
        kinds = [type(e) for e in self.log]
        if SwapReissued in kinds:
            assert SwapRequested in kinds[: kinds.index(SwapReissued)]

    @invariant()
    def only_limit_orders_wait_or_expire(self) -> None:
        if self.state.status in ("waiting", "expired"):
            assert self.state.order_type == "limit"

    @invariant()
    def attempts_never_exceed_the_configured_max(self) -> None:
        assert self.state.attempts <= MAX_ATTEMPTS, self.state.attempts

    @invariant()
    def confirmations_never_fall_below_min_out(self) -> None:
        for amount_out, min_out in self.confirmations:
            assert min_out is not None and amount_out >= min_out

    @invariant()
    def fold_of_the_log_equals_the_stepwise_state_and_is_deterministic(self) -> None:
        replayed = fold(self.log)
        assert replayed == self.state
        assert fold(self.log) == replayed


def test_order_lifecycle_invariants_hold_under_random_commands() -> None:
    run_state_machine_as_test(OrderLifecycle, settings=SETTINGS)


# --- routing properties -----------------------------------------------------------


def pending(amount: Decimal, slippage: Decimal = Decimal("0.01")) -> OrderState:
    command = PlaceOrder(
        command_id="place",
        order_id="order-1",
        user_id="user-1",
        order_type="market",
        token_in="SOL",
        token_out="USDC",
        amount=amount,
        slippage_tolerance=slippage,
    )
    return fold(decide(OrderState(), command))


@SETTINGS
@given(quotes=quote_lists(), amount=amounts)
def test_routed_quote_nets_at_least_as_much_as_every_other(quotes: list[Quote], amount: Decimal) -> None:
    events = decide(pending(amount), RouteOrder(command_id="route", quotes=quotes))
    routed = events[0]
    assert isinstance(routed, OrderRouting)
    chosen = next(q for q in routed.quotes if q.dex == routed.chosen_dex)
    assert routed.expected_out == chosen.expected_out
    assert all(chosen.expected_out >= q.expected_out for q in routed.quotes)
    assert all(q.expected_out == routing.expected_out(q, amount) for q in routed.quotes)


@SETTINGS
@given(quotes=quote_lists(), amount=amounts, data=st.data())
def test_choice_does_not_depend_on_quote_order(
    quotes: list[Quote], amount: Decimal, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(quotes), label="shuffled")
    assert routing.choose_best(shuffled, amount)[0] == routing.choose_best(quotes, amount)[0]


@SETTINGS
@given(quote=quote_lists().map(lambda qs: qs[0]), amount=amounts)
def test_net_output_never_beats_the_fee_adjusted_headline_price(quote: Quote, amount: Decimal) -> None:
    assert Decimal(0) <= routing.expected_out(quote, amount) <= quote.price * amount * (1 - quote.fee)


@SETTINGS
@given(
    expected=st.decimals(min_value=Decimal(0), max_value=Decimal(10) ** 11, places=12),
    slippage=slippages,
)
def test_minimum_out_lies_within_one_quantum_below_the_exact_bound(
    expected: Decimal, slippage: Decimal
) -> None:
    min_out = routing.minimum_out(expected, slippage)
    assert min_out <= expected
    assert min_out <= expected * (1 - slippage)
    assert min_out >= expected * (1 - slippage) - Decimal("1e-12")


@SETTINGS
@given(
    quotes=quote_lists(),
    amount=amounts,
    slippage=slippages,
    factor=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.05"), places=6),
)
def test_confirmation_is_recorded_only_when_amount_out_reaches_min_out(
    quotes: list[Quote], amount: Decimal, slippage: Decimal, factor: Decimal
) -> None:
    state = pending(amount, slippage)
    for command in (
        RouteOrder(command_id="route", quotes=quotes),
        BuildTransaction(command_id="build"),
        RecordSubmission(command_id="submit", tx_hash="tx"),
    ):
        state = fold(decide(state, command), state)
    assert state.status == "submitted" and state.min_out is not None and state.expected_out is not None
    amount_out = state.expected_out * factor
    events = decide(
        state,
        RecordConfirmation(command_id="c", tx_hash="tx", executed_price=Decimal(1), amount_out=amount_out),
    )
    assert len(events) == 1
    if amount_out >= state.min_out:
        assert isinstance(events[0], OrderConfirmed)
    else:
        assert isinstance(events[0], OrderFailed) and "slippage" in events[0].error

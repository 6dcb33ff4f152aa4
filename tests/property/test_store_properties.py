"""`handle` on the real Postgres event store agrees with the pure domain under random commands.

A rule-based state machine sends random command sequences for one order through
`domain.services.handling.handle` against Postgres, and the same commands through `decide` +
`evolve` in memory (a refused command, a DomainError, stores nothing). Besides the
lifecycle commands it redelivers commands already sent (same command_id: the stream
must not grow) and races two commands on one order so that one loses the append with
a ConcurrencyConflict and is decided again. After every step the stored stream must be
the pure log, event for event and version for version.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import PostgresEventStore
from domain.commands import (
    BuildTransaction,
    Command,
    FailOrder,
    PlaceOrder,
    RecordAttemptFailure,
    RecordConfirmation,
    RecordSubmission,
    RouteOrder,
)
from domain.errors import ConcurrencyConflict, DomainError
from domain.events import Event, Quote, Step
from domain.order import OrderState, decide, evolve, fold
from domain.ports import EventMetadata, RecordedEvent
from domain.services.handling import handle
from tests.property.test_order_properties import (
    MAX_ATTEMPTS,
    place_commands,
    prices,
    quote_lists,
    steps,
    tx_hashes,
)

pytestmark = [pytest.mark.integration]

SETTINGS = settings(
    max_examples=100,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Workers may report attempt numbers beyond the max (a redelivered message).
attempts = st.integers(min_value=1, max_value=MAX_ATTEMPTS + 3)
delays = st.integers(min_value=0, max_value=60_000)
# Around the expected output, so confirmations land on both sides of min_out.
factors = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.05"), places=4)
RENDEZVOUS_TIMEOUT_S = 10
# The statuses a run may be walked to before its random steps, in lifecycle order.
LIFECYCLE = ("new", "pending", "routing", "building", "submitted")


# --- commands -------------------------------------------------------------------------
# Built with an empty command_id; the machine gives each one a fresh id when it is sent.


def route_command(quotes: list[Quote]) -> RouteOrder:
    return RouteOrder(command_id="", quotes=quotes)


def submission_command(tx_hash: str) -> RecordSubmission:
    return RecordSubmission(command_id="", tx_hash=tx_hash)


def confirmation_command(
    state: OrderState, factor: Decimal, executed_price: Decimal, same_tx: bool
) -> RecordConfirmation:
    """A confirmation for the submitted transaction (or, if not `same_tx`, for another one)."""
    tx_hash = state.tx_hash if same_tx and state.tx_hash else "not-the-submitted-tx"
    return RecordConfirmation(
        command_id="",
        tx_hash=tx_hash,
        executed_price=executed_price,
        amount_out=(state.expected_out or Decimal(1)) * factor,
    )


def attempt_failure_command(step: Step, attempt: int, delay_ms: int) -> RecordAttemptFailure:
    return RecordAttemptFailure(
        command_id="",
        step=step,
        attempt=attempt,
        max_attempts=MAX_ATTEMPTS,
        error="rpc timeout",
        delay_ms=delay_ms,
    )


def fail_command(step: Step) -> FailOrder:
    return FailOrder(command_id="", step=step, error="operator cancelled")


def next_command(
    state: OrderState, order_id: str, quotes: list[Quote], tx_hash: str, factor: Decimal
) -> Command:
    """The legal next command for the status, so runs reach the later statuses."""
    match state.status:
        case "new":
            return PlaceOrder(
                command_id="",
                order_id=order_id,
                user_id="user-1",
                order_type="market",
                token_in="SOL",
                token_out="USDC",
                amount=Decimal("1.5"),
                slippage_tolerance=Decimal("0.01"),
            )
        case "pending":
            return route_command(quotes)
        case "routing":
            return BuildTransaction(command_id="")
        case "building":
            return submission_command(tx_hash)
        case _:  # submitted; on a terminal order this is refused, as it should be
            return confirmation_command(state, factor, Decimal(1), same_tx=True)


def next_commands(state: OrderState, order_id: str) -> st.SearchStrategy[Command]:
    return st.builds(
        lambda q, t, f: next_command(state, order_id, q, t, f), quote_lists(), tx_hashes, factors
    )


def any_command(state: OrderState, order_id: str) -> st.SearchStrategy[Command]:
    """Any command kind, with arguments that make sense for `state` where that matters."""
    return st.one_of(
        place_commands().map(lambda c: msgspec.structs.replace(c, order_id=order_id)),
        quote_lists().map(route_command),
        st.just(BuildTransaction(command_id="")),
        tx_hashes.map(submission_command),
        st.builds(lambda f, p, s: confirmation_command(state, f, p, s), factors, prices, st.booleans()),
        st.builds(attempt_failure_command, steps, attempts, delays),
        steps.map(fail_command),
        next_commands(state, order_id),
    )


def racing_commands(state: OrderState, order_id: str) -> st.SearchStrategy[Command]:
    """Mostly commands the state allows, so that both racers often try to append."""
    return st.one_of(
        next_commands(state, order_id),
        st.builds(attempt_failure_command, steps, attempts, delays),
        steps.map(fail_command),
        any_command(state, order_id),
    )


# --- the pure reference ---------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What `handle` did: the state and records it returned, or the DomainError it raised."""

    state: OrderState | None
    recorded: list[tuple[int, str, Event]]  # (version, command_id, event)
    error: str | None = None


def refused(exc: DomainError) -> Outcome:
    return Outcome(state=None, recorded=[], error=f"{type(exc).__name__}: {exc}")


class PureOrder:
    """What `handle` should do, decided and folded in memory."""

    def __init__(self) -> None:
        self.state = OrderState()
        self.log: list[Event] = []
        self.causes: list[tuple[str, str]] = []  # (command_id, actor) of each event

    def stored_for(self, command_id: str) -> list[tuple[int, str, Event]]:
        return [
            (version, cause, event)
            for version, (event, (cause, _)) in enumerate(zip(self.log, self.causes, strict=True), start=1)
            if cause == command_id
        ]

    def would_append(self, command: Command) -> bool:
        """Whether `handle` would try to append `command`'s events from the current state."""
        if self.stored_for(command.command_id):
            return False
        try:
            return bool(decide(self.state, command))
        except DomainError:
            return False

    def handle(self, command: Command, actor: str) -> Outcome:
        already = self.stored_for(command.command_id)
        if already:  # a redelivery: the stored result, nothing new
            return Outcome(state=self.state, recorded=already)
        try:
            events = decide(self.state, command)
        except DomainError as exc:
            return refused(exc)
        start = self.state.version
        for event in events:
            self.state = evolve(self.state, event)
            self.log.append(event)
            self.causes.append((command.command_id, actor))
        return Outcome(
            state=self.state,
            recorded=[(start + i, command.command_id, e) for i, e in enumerate(events, start=1)],
        )


# --- the real side --------------------------------------------------------------------


async def outcome_of(store: Any, order_id: str, command: Command, actor: str) -> Outcome:
    try:
        handled = await handle(store, order_id, command, actor=actor)
        state, recorded = handled.state, handled.recorded
    except DomainError as exc:
        return refused(exc)
    return Outcome(state=state, recorded=[(r.version, r.metadata.causation_id, r.event) for r in recorded])


class RendezvousStore:
    """The real store, except that each of two handlers waits after its first read
    until the other has read too: both decide from the same version, so if both
    append, exactly one of them gets a ConcurrencyConflict."""

    def __init__(self, inner: PostgresEventStore) -> None:
        self._inner = inner
        self._barrier = asyncio.Barrier(2)
        self._met: set[asyncio.Task[Any]] = set()
        self.conflicts = 0
        self.appended_by: list[str] = []  # actors of the appends that stored events, in order

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        history = await self._inner.read_stream(stream_id)
        task = asyncio.current_task()
        assert task is not None
        if task not in self._met:
            self._met.add(task)
            async with asyncio.timeout(RENDEZVOUS_TIMEOUT_S):
                await self._barrier.wait()
        return history

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event], metadata: EventMetadata
    ) -> list[RecordedEvent]:
        try:
            recorded = await self._inner.append(stream_id, expected_version, events, metadata)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise
        if recorded:
            self.appended_by.append(metadata.actor)
        return recorded


class StoredOrderMachine(RuleBasedStateMachine):
    """Random commands on one order, through Postgres and in memory side by side."""

    database_url: ClassVar[str | None] = None  # set by the `machine_database` fixture

    def __init__(self) -> None:
        super().__init__()
        assert self.database_url, "set by the machine_database fixture"
        self.order_id = str(uuid.uuid4())  # order ids are UUIDs, as the read model expects
        self.runner = asyncio.Runner()
        try:
            self.pool = self.runner.run(self._open_pool(self.database_url))
        except BaseException:
            self.runner.close()
            raise
        self.store = PostgresEventStore(self.pool.connection)
        self.pure = PureOrder()
        self.sent: list[Command] = []
        self.stored: list[RecordedEvent] = []
        self.at_terminal: tuple[list[tuple[int, int, Event]], OrderState] | None = None
        self.count = 0

    @staticmethod
    async def _open_pool(url: str) -> AsyncConnectionPool[AsyncConnection[Any]]:
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            url, min_size=2, max_size=2, open=False, kwargs={"autocommit": True}
        )
        await pool.open(wait=True)
        return pool

    def teardown(self) -> None:
        try:
            self.runner.run(self.pool.close())
        finally:
            self.runner.close()

    # --- plumbing -------------------------------------------------------------------

    def fresh(self, command: Command) -> Command:
        self.count += 1
        kind = type(command).__name__
        return msgspec.structs.replace(command, command_id=f"{self.order_id}:{self.count}:{kind}")

    def remember(self, *commands: Command) -> None:
        for command in commands:
            if all(c.command_id != command.command_id for c in self.sent):
                self.sent.append(command)

    def refresh(self) -> None:
        self.stored = self.runner.run(self.store.read_stream(self.order_id))
        if self.at_terminal is None and self.pure.state.is_terminal:
            self.at_terminal = (self.snapshot(), self.pure.state)

    def snapshot(self) -> list[tuple[int, int, Event]]:
        return [(r.position, r.version, r.event) for r in self.stored]

    def send(self, command: Command, actor: str = "worker") -> Outcome:
        expected = self.pure.handle(command, actor)
        actual = self.runner.run(outcome_of(self.store, self.order_id, command, actor))
        assert actual == expected
        self.remember(command)
        self.refresh()
        return actual

    @initialize(
        reach=st.sampled_from(LIFECYCLE),
        command=place_commands(),
        quotes=quote_lists(),
        tx_hash=tx_hashes,
    )
    def start(self, reach: str, command: PlaceOrder, quotes: list[Quote], tx_hash: str) -> None:
        """Walk the order to a random status first (through the store, checked like any
        step), so that short runs still exercise the later statuses."""
        if reach != "new":
            self.place(command)
        # Each legal next command moves a status before `reach` on (or ends the order).
        while self.pure.state.status in LIFECYCLE[: LIFECYCLE.index(reach)]:
            self.send(self.fresh(next_command(self.pure.state, self.order_id, quotes, tx_hash, Decimal(1))))
        self.refresh()

    # --- rules: every command is offered in every state -----------------------------

    @rule(command=place_commands())
    def place(self, command: PlaceOrder) -> None:
        self.send(self.fresh(msgspec.structs.replace(command, order_id=self.order_id)))

    @rule(quotes=quote_lists())
    def route(self, quotes: list[Quote]) -> None:
        self.send(self.fresh(route_command(quotes)))

    @rule()
    def build(self) -> None:
        self.send(self.fresh(BuildTransaction(command_id="")))

    @rule(tx_hash=tx_hashes)
    def record_submission(self, tx_hash: str) -> None:
        self.send(self.fresh(submission_command(tx_hash)))

    @rule(factor=factors, executed_price=prices, same_tx=st.booleans())
    def record_confirmation(self, factor: Decimal, executed_price: Decimal, same_tx: bool) -> None:
        self.send(self.fresh(confirmation_command(self.pure.state, factor, executed_price, same_tx)))

    @rule(step=steps, attempt=attempts, delay_ms=delays)
    def attempt_failure(self, step: Step, attempt: int, delay_ms: int) -> None:
        self.send(self.fresh(attempt_failure_command(step, attempt, delay_ms)))

    @rule(step=steps)
    def fail(self, step: Step) -> None:
        self.send(self.fresh(fail_command(step)))

    @rule(quotes=quote_lists(), tx_hash=tx_hashes, factor=factors, count=st.integers(1, 3))
    def advance(self, quotes: list[Quote], tx_hash: str, factor: Decimal, count: int) -> None:
        """Up to `count` legal next commands, so runs reach the later statuses."""
        for _ in range(count):
            if self.pure.state.is_terminal:
                break
            self.send(self.fresh(next_command(self.pure.state, self.order_id, quotes, tx_hash, factor)))

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """A message delivered again with the same command_id. If the stream holds its
        events, nothing is appended and they are returned; if it was refused, it is
        decided afresh (it may be allowed now)."""
        command = data.draw(st.sampled_from(self.sent), label="redelivered")
        was_stored = bool(self.pure.stored_for(command.command_id))
        length = len(self.stored)
        outcome = self.send(command, actor="redelivery")
        if was_stored:
            assert outcome.error is None and len(self.stored) == length

    @precondition(lambda self: not self.pure.state.is_terminal)
    @rule(data=st.data(), duplicate=st.booleans())
    def race(self, data: st.DataObject, duplicate: bool) -> None:
        """Two commands (or one command delivered twice) handled concurrently on a live order.
        (On a terminal order both are simply refused; the other rules cover that.)"""
        first = self.fresh(data.draw(racing_commands(self.pure.state, self.order_id), label="first"))
        second = (
            first
            if duplicate
            else self.fresh(data.draw(racing_commands(self.pure.state, self.order_id), label="second"))
        )
        racers = {"racer-a": first, "racer-b": second}
        appends = {actor: self.pure.would_append(c) for actor, c in racers.items()}
        store = RendezvousStore(self.store)

        async def both() -> list[Outcome]:
            return list(
                await asyncio.gather(
                    *(outcome_of(store, self.order_id, c, actor) for actor, c in racers.items())
                )
            )

        actual = dict(zip(racers, self.runner.run(both()), strict=True))
        if all(appends.values()):
            # Both decided from the same version: one append wins, the other conflicts and
            # is decided again after it (refused, stored, or found already done).
            assert store.conflicts == 1
            order = [store.appended_by[0], *(a for a in racers if a != store.appended_by[0])]
        else:
            # At most one appends; a refused one equals being handled before it.
            assert store.conflicts == 0
            order = sorted(racers, key=lambda a: appends[a])
        expected = {actor: self.pure.handle(racers[actor], actor) for actor in order}
        assert actual == expected
        self.remember(first, second)
        self.refresh()

    # --- invariants -----------------------------------------------------------------

    @invariant()
    def stored_stream_equals_the_pure_log(self) -> None:
        assert [r.event for r in self.stored] == self.pure.log

    @invariant()
    def each_stored_event_names_the_command_and_writer_that_caused_it(self) -> None:
        assert [(r.metadata.causation_id, r.metadata.actor) for r in self.stored] == self.pure.causes
        assert all(r.stream_id == self.order_id for r in self.stored)
        assert all(r.metadata.correlation_id == self.order_id for r in self.stored)

    @invariant()
    def a_commands_events_are_stored_together_once(self) -> None:
        causes = [r.metadata.causation_id for r in self.stored]
        run_starts = [c for i, c in enumerate(causes) if i == 0 or causes[i - 1] != c]
        assert len(run_starts) == len(set(run_starts)), run_starts

    @invariant()
    def versions_are_contiguous_from_one_and_positions_increase(self) -> None:
        assert [r.version for r in self.stored] == list(range(1, len(self.stored) + 1))
        positions = [r.position for r in self.stored]
        assert positions == sorted(set(positions))

    @invariant()
    def fold_of_the_stored_stream_equals_the_pure_state(self) -> None:
        assert fold(r.event for r in self.stored) == self.pure.state

    @invariant()
    def a_terminal_state_never_changes(self) -> None:
        if self.at_terminal is not None:
            snapshot, state = self.at_terminal
            assert self.snapshot() == snapshot
            assert fold(r.event for r in self.stored) == state == self.pure.state


@pytest.fixture
def machine_database(database_url: str) -> Iterator[None]:
    """Hypothesis builds the machine itself, so the session database goes on the class."""
    StoredOrderMachine.database_url = database_url
    yield
    StoredOrderMachine.database_url = None


@pytest.mark.usefixtures("machine_database")
def test_store_agrees_with_the_pure_domain_under_random_commands_redeliveries_and_races() -> None:
    run_state_machine_as_test(StoredOrderMachine, settings=SETTINGS)

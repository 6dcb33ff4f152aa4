"""Fakes and builders shared by the unit tests of the application services.

Everything runs in memory on one event loop with a fixed clock: the in-memory event
store, step queue and slots from `adapters/`, and a scriptable DEX that answers at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec

from adapters.in_memory import InMemorySlots, RecordingStepQueue, SentStep
from adapters.memory_event_store import InMemoryEventStore
from domain.commands import (
    BuildTransaction,
    CancelOrder,
    Command,
    ExpireOrder,
    FailOrder,
    RecordConfirmation,
    RecordSubmission,
    RequestSwap,
    RouteOrder,
)
from domain.events import Event, Quote
from domain.order import OrderState
from domain.ports import Dex, EventStore, SignedSwap, SwapPlan, SwapReceipt, SwapTerms
from domain.routing import expected_out
from domain.services.execution import ExecutionPolicy, OrderExecution
from domain.services.handling import handle, load
from tests.factories import new_order_id, place_order, quotes

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


class NoJitter(random.Random):
    """Backoff without jitter, so a retry delay is exactly `base * 2**(attempt-1)`."""

    def random(self) -> float:
        return 0.0


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """One `send` call as the DEX saw it, with the order as the log held it then."""

    order_id: str
    idempotency_key: str | None
    version: int
    swap_key: str | None
    signature: str = ""


class FakeDex:
    """A venue that answers at once at `price`; errors and the fill can be scripted.

    Each call yields to the event loop once, so concurrent steps interleave at the I/O.
    With `on_chain`, its signed swaps carry a transaction and an expiry height, and each
    signing under one key gives a new signature (a fresh blockhash), like a real chain.
    """

    def __init__(self, name: str, price: Decimal = Decimal(150), *, store: EventStore | None = None) -> None:
        self.name = name
        self.price = price
        self.store = store  # read at `send` to see what the log holds at that moment
        self.quote_error: Exception | None = None
        self.plan_error: Exception | None = None
        self.sign_error: Exception | None = None
        self.submit_error: Exception | None = None
        # Raised by the next sends/confirms, one each, before `submit_error`/`confirm_error`.
        self.send_errors: list[Exception] = []
        self.confirm_errors: list[Exception] = []
        self.confirm_error: Exception | None = None
        self.fill = Decimal(1)  # share of the quoted output the swap returns
        self.on_chain = False
        self.budget = SwapPlan()  # what `plan` answers
        # Runs inside each quote call: what happens elsewhere while the venue is asked.
        self.while_quoting: Callable[[], Awaitable[object]] | None = None
        self.quoted = 0
        self.planned: list[SwapTerms] = []
        self.signed: list[str] = []
        self.submissions: list[Submission] = []
        self._keys: dict[str, str] = {}

    async def quote(self, token_in: str, token_out: str, amount: Decimal) -> Quote:
        await asyncio.sleep(0)
        self.quoted += 1
        if self.while_quoting is not None:
            await self.while_quoting()
        if self.quote_error is not None:
            raise self.quote_error
        return Quote(dex=self.name, price=self.price, fee=Decimal("0.003"), liquidity=Decimal(50_000))

    async def plan(self, terms: SwapTerms) -> SwapPlan:
        await asyncio.sleep(0)
        self.planned.append(terms)
        if self.plan_error is not None:
            raise self.plan_error
        return self.budget

    async def sign(self, terms: SwapTerms, idempotency_key: str) -> SignedSwap:
        await asyncio.sleep(0)
        if self.sign_error is not None:
            raise self.sign_error
        if not self.on_chain:
            signature = f"tx-{idempotency_key}"
            self._keys[signature] = idempotency_key
            self.signed.append(signature)
            return SignedSwap(signature=signature)
        signature = f"tx-{idempotency_key}-{len(self.signed) + 1}"
        self._keys[signature] = idempotency_key
        self.signed.append(signature)
        return SignedSwap(
            signature=signature, transaction="AQID", last_valid_block_height=100 + len(self.signed)
        )

    async def send(self, swap: SignedSwap, terms: SwapTerms) -> None:
        state = (await load(self.store, terms.order_id)).state if self.store is not None else OrderState()
        self.submissions.append(
            Submission(
                order_id=terms.order_id,
                idempotency_key=self._keys.get(swap.signature),
                version=state.version,
                swap_key=state.swap_key,
                signature=swap.signature,
            )
        )
        if self.send_errors:
            raise self.send_errors.pop(0)
        if self.submit_error is not None:
            raise self.submit_error

    def explorer_url(self, tx_hash: str) -> str | None:
        return f"https://explorer.test/tx/{tx_hash}"

    async def confirm(self, swap: SignedSwap, terms: SwapTerms) -> SwapReceipt:
        await asyncio.sleep(0)
        if self.confirm_errors:
            raise self.confirm_errors.pop(0)
        if self.confirm_error is not None:
            raise self.confirm_error
        out = (expected_out(terms.quote, terms.amount) * self.fill).quantize(Decimal("1e-12"))
        return SwapReceipt(
            tx_hash=swap.signature,
            executed_price=out / terms.amount,
            amount_out=out,
            slot=7 if self.on_chain else None,
            fee_paid=Decimal("0.000005") if self.on_chain else None,
            amount_in=terms.amount if self.on_chain else None,
        )


def without_state(sent: list[SentStep]) -> list[SentStep]:
    """What was queued, leaving out the state each message carried (checked on its own)."""
    return [msgspec.structs.replace(s, state=None) for s in sent]


class Rig:
    """One OrderExecution over in-memory ports, with everything it touched at hand."""

    def __init__(
        self,
        dexes: Mapping[str, Dex] | None = None,
        *,
        max_in_flight: int = 10,
        per_minute: int = 100,
        max_attempts: int = 3,
        backoff_base_ms: int = 100,
    ) -> None:
        self.store = InMemoryEventStore(clock=clock)
        self.queue = RecordingStepQueue()
        self.slots = InMemorySlots(max_in_flight, per_minute, clock=lambda: NOW.timestamp())
        self.raydium = FakeDex("raydium", store=self.store)
        self.dexes: Mapping[str, Dex] = dexes if dexes is not None else {"raydium": self.raydium}
        self.policy = ExecutionPolicy(
            max_attempts=max_attempts, backoff_base_ms=backoff_base_ms, quote_timeout_s=1
        )
        self.execution = OrderExecution(
            self.store, self.dexes, self.slots, self.queue, self.policy, clock, rng=NoJitter(7)
        )

    async def place(self, **overrides: object) -> str:
        return await place(self.store, **overrides)

    async def state(self, order_id: str) -> OrderState:
        return (await load(self.store, order_id)).state

    async def events(self, order_id: str) -> list[Event]:
        return [r.event for r in await self.store.read_stream(order_id)]


async def place(store: EventStore, **overrides: object) -> str:
    """A new order (a market SOL→USDC order unless overridden), stored as pending."""
    oid = new_order_id()
    await handle(store, oid, place_order(oid, **overrides), actor="test", issued_at=NOW)
    return oid


async def record(store: EventStore, order_id: str, command: Command) -> OrderState:
    return (await handle(store, order_id, command, actor="test", issued_at=NOW)).state


async def order_in(store: EventStore, status: str, **overrides: object) -> str:
    """An order driven through the log to `status`; "requested" is building with its
    SwapRequested recorded. Waiting and expired orders are limit orders."""
    oid = await _drive(store, status, **overrides)
    state = (await load(store, oid)).state
    assert state.status == ("building" if status == "requested" else status)
    assert (state.swap_key is not None) == (status in ("requested", "submitted", "confirmed"))
    return oid


async def _drive(store: EventStore, status: str, **overrides: object) -> str:
    if status in ("waiting", "expired"):
        overrides = {
            "order_type": "limit",
            "limit_price": Decimal(1000),
            "expires_at": NOW - timedelta(minutes=1),
            **overrides,
        }
    oid = await place(store, **overrides)
    if status == "pending":
        return oid
    if status == "cancelled":
        await record(store, oid, CancelOrder(command_id="c"))
        return oid
    if status == "failed":
        await record(store, oid, FailOrder(command_id="f", step="route", error="gave up"))
        return oid
    await record(store, oid, RouteOrder(command_id="r", quotes=quotes()))
    if status == "waiting":
        return oid
    if status == "expired":
        await record(store, oid, ExpireOrder(command_id="e", now=NOW))
        return oid
    path: list[tuple[str, Command]] = [
        ("building", BuildTransaction(command_id="b")),
        ("requested", RequestSwap(command_id="q", idempotency_key=f"{oid}:swap")),
        ("submitted", RecordSubmission(command_id="s", tx_hash="tx-1")),
    ]
    reached = "routing"
    for name, command in path:
        if reached == status:
            return oid
        state = await record(store, oid, command)
        reached = name
    if status == "confirmed":
        assert state.expected_out is not None
        done = RecordConfirmation(
            command_id="k", tx_hash="tx-1", executed_price=Decimal(150), amount_out=state.expected_out
        )
        await record(store, oid, done)
    return oid

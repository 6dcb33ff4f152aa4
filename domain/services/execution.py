"""The four execution steps of an order: route, build, submit, confirm.

Each step reads the order's stream once, does nothing if its work is already
recorded (delivery is at least once), does its I/O, records the outcome through the
pure `decide` with one append, and hands the next step to the queue. Transient
failures become a `RetryScheduled` event with the delay (the caller retries after it),
or `OrderFailed` once the attempts are used up. An order holds an execution slot from
the moment it starts routing until it ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal

import msgspec

from domain.backoff import backoff_ms
from domain.commands import (
    AwaitLaunch,
    BuildTransaction,
    Command,
    FailOrder,
    RecordAttemptFailure,
    RecordConfirmation,
    RecordSubmission,
    ReissueSwap,
    RequestSwap,
    RouteOrder,
)
from domain.errors import (
    DomainError,
    NoPool,
    QueueUnavailable,
    SwapExpired,
    SwapPending,
    SwapRejected,
    TransientError,
)
from domain.events import OrderBuilding, OrderRouting, Quote, Step
from domain.order import OrderState, decide
from domain.ports import Dex, EventStore, ExecutionSlots, SignedSwap, StepQueue, SwapTerms
from domain.services.handling import OrderHistory, handle, load
from domain.services.quoting import quote_all
from domain.tokens import TOKENS

log = logging.getLogger("orderengine.steps")

# The statuses in which an order holds an execution slot.
EXECUTING = frozenset({"routing", "building", "submitted"})


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a step did after its work: handed on the next step, asks to be retried after
    `retry_in_ms`, or was deferred (no slot free) and re-queued after `defer_ms`."""

    next_step: Step | None = None
    retry_in_ms: int | None = None
    defer_ms: int | None = None


DONE = Outcome()


class ExecutionPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int
    backoff_base_ms: int
    quote_timeout_s: float
    # How many times a signed swap that expired unlanded is signed again before the order fails.
    max_reissues: int = 3
    # How long a step whose work is recorded waits for the queue to take the next step
    # (Redis restarting, say) before leaving the order to the stuck-order re-driver.
    queue_patience_s: float = 60.0


class _Run:
    """One run of one step: the order's latest known history, kept current as it records."""

    def __init__(
        self, step: Step, order_id: str, attempt: int, message_id: str, history: OrderHistory
    ) -> None:
        self.step = step
        self.order_id = order_id
        self.attempt = attempt
        self.message_id = message_id
        self.history = history

    @property
    def state(self) -> OrderState:
        return self.history.state


class OrderExecution:
    def __init__(
        self,
        store: EventStore,
        dexes: Mapping[str, Dex],
        slots: ExecutionSlots,
        queue: StepQueue,
        policy: ExecutionPolicy,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.dexes = dexes
        self.slots = slots
        self.queue = queue
        self.policy = policy
        self.clock = clock
        self.rng = rng or random.Random()
        self._steps: dict[Step, Callable[[_Run], Awaitable[Outcome]]] = {
            "route": self._route,
            "build": self._build,
            "submit": self._submit,
            "confirm": self._confirm,
        }

    async def run(
        self,
        step: Step,
        order_id: str,
        attempt: int,
        message_id: str = "",
        known: OrderState | None = None,
    ) -> Outcome:
        """Run one step; `message_id` (stable across redeliveries) makes its command ids unique.

        `known` is the order as the previous step recorded it (carried by the message): the
        step then reads nothing unless its append finds the stream moved on. A DomainError
        (the order moved on meanwhile: cancelled, expired, or a concurrent copy of this step
        won) is re-raised after the order's slot is given back if it ended.
        """
        history = (
            OrderHistory(state=known, events=None)
            if known is not None and known.order_id == order_id
            else await load(self.store, order_id)
        )
        run = _Run(step, order_id, attempt, message_id, history)
        try:
            try:
                outcome = await self._steps[step](run)
            except TransientError as exc:
                # Recording the failure can itself be refused (cancelled during the I/O):
                # the outer handler then gives the slot back like any other refusal.
                return await self._attempt_failed(run, str(exc))
        except DomainError:
            await self._skip((await load(self.store, order_id)).state)
            raise
        await self._hand_on(run, outcome)
        return outcome

    async def _hand_on(self, run: _Run, outcome: Outcome) -> None:
        """Queue the next step (or this one again, later). The step's work is recorded by
        now and a redelivered step hands on nothing (its next step went out the first
        time), so failing here would leave the order still until the re-driver's next
        look: an unreachable queue is waited for instead, up to `queue_patience_s`."""
        state = run.state
        if outcome.next_step is not None:
            step, delay_ms = outcome.next_step, None
        elif outcome.defer_ms is not None:
            step, delay_ms = run.step, outcome.defer_ms
        else:
            return
        deadline = time.monotonic() + self.policy.queue_patience_s
        pause = 0.05
        while True:
            try:
                await self.queue.send(
                    step, run.order_id, priority=state.is_priority, delay_ms=delay_ms, state=state
                )
                return
            except QueueUnavailable as exc:
                if time.monotonic() + pause > deadline:
                    raise
                log.warning(
                    "the queue is unreachable; handing the order on again shortly",
                    extra={"orderId": run.order_id, "step": step, "error": str(exc)},
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    # -- recording ------------------------------------------------------------------

    async def _record(self, run: _Run, command: Command) -> OrderState:
        handled = await handle(
            self.store,
            run.order_id,
            command,
            actor=f"worker:{run.step}",
            attempt=run.attempt,
            issued_at=self.clock(),
            history=run.history,
        )
        if handled.appended and handled.recorded[0].version == run.state.version + 1:
            run.history = run.history.after(handled)
        elif handled.state.version != run.state.version:
            # Decided on a fresher read than ours (after a conflict): the rest of the run needs it.
            run.history = await load(self.store, run.order_id)
        return handled.state

    async def _attempt_failed(self, run: _Run, error: str) -> Outcome:
        delay = backoff_ms(run.attempt, self.policy.backoff_base_ms, jitter=self.rng.random())
        command = RecordAttemptFailure(
            command_id=f"{run.order_id}:{run.step}:{run.message_id}:{run.attempt}:failed",
            step=run.step,
            attempt=run.attempt,
            max_attempts=self.policy.max_attempts,
            error=error,
            delay_ms=delay,
        )
        state = await self._record(run, command)
        if state.is_terminal:
            await self._finished(state, run.step)
            return DONE
        if state.status not in EXECUTING:
            await self.slots.release(run.order_id)  # a route that failed before it routed
        log.warning(
            "step failed, retrying",
            extra={
                "orderId": run.order_id,
                "step": run.step,
                "attempt": run.attempt,
                "error": error,
                "retryInMs": delay,
            },
        )
        return Outcome(retry_in_ms=delay)

    async def _finished(self, state: OrderState, step: Step) -> None:
        await self.slots.release(state.order_id)
        log.info(
            "order %s",
            state.status,
            extra={
                "orderId": state.order_id,
                "userId": state.user_id,
                "step": step,
                "status": state.status,
                "dex": state.chosen_dex,
                "txHash": state.tx_hash,
                "executedPrice": str(state.executed_price) if state.executed_price else None,
                "attempts": state.attempts,
                "error": state.last_error,
            },
        )

    def _defer(self, wait: int) -> Outcome:
        """Try again later: after the rate window's wait, or a jittered pause when slots are full."""
        return Outcome(defer_ms=wait if wait > 0 else self.rng.randint(200, 500))

    async def _release_unless_executing(self, state: OrderState) -> None:
        if state.status not in EXECUTING:
            await self.slots.release(state.order_id)

    async def _skip(self, state: OrderState) -> Outcome:
        """This step's work is done or moot; an order that ended meanwhile gives its slot back."""
        if state.is_terminal:
            await self.slots.release(state.order_id)
        return DONE

    # -- the steps ------------------------------------------------------------------

    async def _route(self, run: _Run) -> Outcome:
        state = run.state
        if state.status not in ("pending", "waiting"):
            return await self._skip(state)
        # Only an order that will execute takes an in-flight slot (and a start from the rate
        # budget), and it takes it as it records its routing, so that a start is counted
        # when it happens. A market or sniper order pending here will execute, so it looks
        # first whether a slot is free, before spending a quote on an order that must wait.
        will_execute = state.status == "pending" and state.order_type != "limit"
        if will_execute and (wait := await self.slots.peek(state.order_id)) is not None:
            return self._defer(wait)
        try:
            round_ = await quote_all(self.dexes.values(), state, self.policy.quote_timeout_s)
        except NoPool as exc:
            outcome = await self._no_pool(run, exc)
            await self._release_unless_executing(run.state)
            return outcome
        command = RouteOrder(
            command_id=f"{state.order_id}:route:{run.message_id}",
            quotes=round_.quotes,
            unavailable=round_.unavailable,
        )
        preview = decide(state, command)
        if preview and isinstance(preview[0], OrderRouting):
            if (wait := await self.slots.acquire(state.order_id)) is not None:
                return self._defer(wait)
        try:
            state = await self._record(run, command)
        except DomainError:
            # Lost to a concurrent copy of this step (a re-drive) or to a cancel: the slot is
            # the order's, so it stays while the order executes and goes once it does not.
            await self._release_unless_executing((await load(self.store, state.order_id)).state)
            raise
        if state.status != "routing":
            await self._release_unless_executing(state)
            if state.is_terminal:
                await self._finished(state, "route")
            elif state.status == "waiting":
                log.info(
                    "waiting for the limit price",
                    extra={"orderId": state.order_id, "step": "route", "bestPrice": str(state.best_price)},
                )
            return DONE
        log.info(
            "routed",
            extra={
                "orderId": state.order_id,
                "userId": state.user_id,
                "step": "route",
                "dex": state.chosen_dex,
                "quotes": {q.dex: str(q.price) for q in state.quotes},
                "expectedOut": str(state.expected_out),
            },
        )
        return Outcome(next_step="build")

    async def _no_pool(self, run: _Run, exc: NoPool) -> Outcome:
        """A sniper order waits for its token's launch; any other order cannot trade the pair."""
        state = run.state
        order_id = state.order_id
        if state.order_type == "sniper":
            token = next((t for t in (exc.token_in, exc.token_out) if not TOKENS[t].launched), exc.token_out)
            await self._record(run, AwaitLaunch(command_id=f"{order_id}:await-launch", token=token))
            log.info(
                "sniper waiting for a launch", extra={"orderId": order_id, "step": "route", "token": token}
            )
            return DONE
        failed = FailOrder(command_id=f"{order_id}:no-pool:{run.message_id}", step="route", error=str(exc))
        await self._finished(await self._record(run, failed), "route")
        return DONE

    async def _build(self, run: _Run) -> Outcome:
        state = run.state
        if state.status != "routing":
            return await self._skip(state)
        await self.slots.renew(state.order_id)
        # A limit order is checked against a fresh quote: the price may have moved since routing.
        fresh = (
            (await quote_all(self.dexes.values(), state, self.policy.quote_timeout_s)).quotes
            if state.order_type == "limit"
            else []
        )
        # The message id keeps the command unique if the order comes back through build later.
        command = BuildTransaction(command_id=f"{state.order_id}:build:{run.message_id}", fresh_quotes=fresh)
        preview = decide(state, command)
        if preview and isinstance(preview[0], OrderBuilding):
            # The venue checks the swap the build decided on (funds, pool) and sizes its budget.
            built = preview[0]
            quote = built.quote or state.chosen_quote
            assert quote is not None
            terms = _terms(state, quote, built.min_out)
            try:
                plan = await self.dexes[built.dex].plan(terms)
            except SwapRejected as exc:
                return await self._rejected(run, "build", exc)
            command = msgspec.structs.replace(
                command, compute_units=plan.compute_units, priority_fee=plan.priority_fee
            )
        state = await self._record(run, command)
        if state.status == "waiting":
            await self.slots.release(state.order_id)
            log.info(
                "limit no longer met at build; waiting again",
                extra={"orderId": state.order_id, "step": "build", "bestPrice": str(state.best_price)},
            )
            return DONE
        return Outcome(next_step="submit")

    async def _submit(self, run: _Run) -> Outcome:
        state = run.state
        if state.status != "building":
            return await self._skip(state)
        order_id = state.order_id
        terms = _swap_terms(state)
        dex = self.dexes[terms.quote.dex]
        await self.slots.renew(order_id)
        if state.swap_key is None:
            # The intent and the signed swap go in the log before the swap goes out: a cancel
            # decided at the same time loses the append race, and a crash after this point
            # re-sends this very transaction instead of swapping twice.
            key = f"{order_id}:swap"
            try:
                signed = await dex.sign(terms, key)
            except SwapRejected as exc:
                return await self._rejected(run, "submit", exc)
            state = await self._record(
                run,
                RequestSwap(
                    command_id=f"{order_id}:request-swap",
                    idempotency_key=key,
                    signature=signed.signature,
                    transaction=signed.transaction,
                    last_valid_block_height=signed.last_valid_block_height,
                ),
            )
        assert state.swap_key is not None
        # A swap requested before signatures were recorded is signed again under its key
        # (the mock's signature is a function of the key, so it is the same one).
        signed = _signed(state) or await dex.sign(terms, state.swap_key)
        try:
            await dex.send(signed, terms)
        except SwapExpired:
            return await self._reissue(run, "submit", terms, signed)
        except SwapRejected as exc:
            return await self._rejected(run, "submit", exc)
        command = RecordSubmission(
            command_id=f"{order_id}:submit",
            tx_hash=signed.signature,
            explorer_url=dex.explorer_url(signed.signature),
        )
        await self._record(run, command)
        log.info(
            "submitted",
            extra={"orderId": order_id, "step": "submit", "dex": dex.name, "txHash": signed.signature},
        )
        return Outcome(next_step="confirm")

    async def _confirm(self, run: _Run) -> Outcome:
        state = run.state
        if state.status != "submitted":
            return await self._skip(state)
        terms = _swap_terms(state)
        dex = self.dexes[terms.quote.dex]
        assert state.tx_hash is not None
        signed = _signed(state) or SignedSwap(signature=state.tx_hash)
        try:
            receipt = await dex.confirm(signed, terms)
        except SwapExpired:
            return await self._reissue(run, "confirm", terms, signed)
        except SwapRejected as exc:
            return await self._rejected(run, "confirm", exc)
        except SwapPending as exc:
            return Outcome(defer_ms=exc.retry_in_ms)
        except TransientError as exc:
            if signed.last_valid_block_height is None:
                raise
            # A signed transaction is out there: until the chain says whether it landed, the
            # order is neither confirmed nor failed. It waits (no attempt is spent) and asks
            # again; its blockhash's expiry bounds how long it can stay unknown once the RPC
            # answers again.
            delay = backoff_ms(run.attempt + 1, self.policy.backoff_base_ms, jitter=self.rng.random())
            log.warning(
                "cannot tell whether the swap landed; asking again",
                extra={"orderId": state.order_id, "step": "confirm", "error": str(exc), "retryInMs": delay},
            )
            return Outcome(defer_ms=delay)
        command = RecordConfirmation(
            command_id=f"{state.order_id}:confirm",
            tx_hash=receipt.tx_hash,
            executed_price=receipt.executed_price,
            amount_out=receipt.amount_out,
            slot=receipt.slot,
            fee_paid=receipt.fee_paid,
            amount_in=receipt.amount_in,
            explorer_url=dex.explorer_url(receipt.tx_hash) if receipt.slot is not None else None,
        )
        await self._finished(await self._record(run, command), "confirm")
        return DONE

    async def _reissue(self, run: _Run, step: Step, terms: SwapTerms, expired: SignedSwap) -> Outcome:
        """Sign the swap again on a fresh blockhash, record it, then send it (the submit step
        sends it when the order was not submitted yet; confirm sends and waits again)."""
        state = run.state
        dex = self.dexes[terms.quote.dex]
        assert state.swap_key is not None
        try:
            signed = await dex.sign(terms, state.swap_key)
        except SwapRejected as exc:
            return await self._rejected(run, step, exc)
        assert signed.transaction is not None and signed.last_valid_block_height is not None
        command = ReissueSwap(
            command_id=f"{state.order_id}:reissue:{state.reissues + 1}",
            step=step,
            previous_signature=expired.signature,
            signature=signed.signature,
            transaction=signed.transaction,
            last_valid_block_height=signed.last_valid_block_height,
            max_reissues=self.policy.max_reissues,
        )
        state = await self._record(run, command)
        if state.is_terminal:
            await self._finished(state, step)
            return DONE
        log.warning(
            "swap expired before it landed; signed again",
            extra={
                "orderId": state.order_id,
                "step": step,
                "txHash": signed.signature,
                "replaces": expired.signature,
                "reissue": state.reissues,
            },
        )
        if step == "confirm":
            await dex.send(signed, terms)
        return Outcome(next_step=step)

    async def _rejected(self, run: _Run, step: Step, exc: SwapRejected) -> Outcome:
        """The venue refused the swap for good: the order fails with its reason, not retried."""
        failed = FailOrder(command_id=f"{run.order_id}:rejected:{step}", step=step, error=exc.reason)
        await self._finished(await self._record(run, failed), step)
        return DONE


def _terms(state: OrderState, quote: Quote, min_out: Decimal) -> SwapTerms:
    return SwapTerms(
        order_id=state.order_id,
        token_in=state.token_in,
        token_out=state.token_out,
        amount=state.amount,
        min_out=min_out,
        quote=quote,
        compute_units=state.compute_units,
        priority_fee=state.priority_fee,
    )


def _signed(state: OrderState) -> SignedSwap | None:
    """The signed swap the log holds for the order, if it recorded one."""
    if state.signature is None:
        return None
    return SignedSwap(
        signature=state.signature,
        transaction=state.signed_transaction,
        last_valid_block_height=state.last_valid_block_height,
    )


def _swap_terms(state: OrderState) -> SwapTerms:
    quote = state.chosen_quote
    if quote is None or state.min_out is None:
        raise RuntimeError(f"order {state.order_id} has no route at {state.status}")
    return _terms(state, quote, state.min_out)

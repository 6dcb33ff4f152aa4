"""The four execution steps (route, build, submit, confirm) as async functions.

Each step loads the order, does nothing if its work is already recorded (a
redelivered message), does its I/O, then records the outcome through the pure
`decide`. Transient failures become a `RetryScheduled` event with the delay, or
`OrderFailed` once the attempts are used up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from adapters.redis_limiter import ExecutionLimiter
from domain.backoff import backoff_ms
from domain.commands import (
    AwaitLaunch,
    BuildTransaction,
    Command,
    FailOrder,
    RecordAttemptFailure,
    RecordConfirmation,
    RecordSubmission,
    RequestSwap,
    RouteOrder,
)
from domain.errors import DomainError, NoPool, TransientError
from domain.events import OrderRouting, Quote, Step
from domain.handling import handle, load
from domain.order import OrderState, decide
from domain.ports import Dex, EventStore
from domain.tokens import TOKENS

log = logging.getLogger("orderengine.steps")

# The statuses in which an order holds an execution slot.
EXECUTING = frozenset({"routing", "building", "submitted"})


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the actor should do next: send a step, retry later, or wait for a slot."""

    next_step: Step | None = None
    retry_in_ms: int | None = None
    defer_ms: int | None = None


DONE = Outcome()


class OrderSteps:
    def __init__(
        self,
        store: EventStore,
        dexes: dict[str, Dex],
        limiter: ExecutionLimiter,
        *,
        max_attempts: int,
        backoff_base_ms: int,
        quote_timeout_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.dexes = dexes
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_base_ms = backoff_base_ms
        self.quote_timeout_s = quote_timeout_s
        self.rng = rng or random.Random()
        self._steps: dict[str, Callable[[str, int, str], Awaitable[Outcome]]] = {
            "route": self._route,
            "build": self._build,
            "submit": self._submit,
            "confirm": self._confirm,
        }

    async def run(self, step: Step, order_id: str, attempt: int, message_id: str = "") -> Outcome:
        """Run one step; `message_id` (stable across redeliveries) makes its command ids unique."""
        try:
            return await self._steps[step](order_id, attempt, message_id)
        except TransientError as exc:
            return await self._attempt_failed(step, order_id, attempt, str(exc), message_id)
        except DomainError:
            # Refused because the order moved on meanwhile (cancelled, expired): free its slot.
            await self._skip(await load(self.store, order_id))
            raise

    async def _attempt_failed(
        self, step: Step, order_id: str, attempt: int, error: str, message_id: str
    ) -> Outcome:
        delay = backoff_ms(attempt, self.backoff_base_ms, jitter=self.rng.random())
        command = RecordAttemptFailure(
            command_id=f"{order_id}:{step}:{message_id}:{attempt}:failed",
            step=step,
            attempt=attempt,
            max_attempts=self.max_attempts,
            error=error,
            delay_ms=delay,
        )
        state = await self._record(step, order_id, command, attempt)
        if state.is_terminal:
            await self._finished(state, step)
            return DONE
        log.warning(
            "step failed, retrying",
            extra={"orderId": order_id, "step": step, "attempt": attempt, "error": error, "retryInMs": delay},
        )
        return Outcome(retry_in_ms=delay)

    async def _record(self, step: Step, order_id: str, command: Command, attempt: int) -> OrderState:
        state, _ = await handle(
            self.store,
            order_id,
            command,
            actor=f"worker:{step}",
            attempt=attempt,
            issued_at=datetime.now(UTC),
        )
        return state

    async def _finished(self, state: OrderState, step: Step) -> None:
        await self.limiter.release(state.order_id)
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

    async def _release_unless_executing(self, order_id: str) -> None:
        if (await load(self.store, order_id)).status not in EXECUTING:
            await self.limiter.release(order_id)

    async def _skip(self, state: OrderState) -> Outcome:
        """This step's work is done or moot; an order that ended meanwhile gives its slot back."""
        if state.is_terminal:
            await self.limiter.release(state.order_id)
        return DONE

    async def _route(self, order_id: str, attempt: int, message_id: str) -> Outcome:
        state = await load(self.store, order_id)
        if state.status not in ("pending", "waiting"):
            return await self._skip(state)
        # Only an order that will execute takes an in-flight slot (and a start from the
        # rate budget). A market or sniper order pending here will, so it asks before
        # spending a quote; a limit order asks once its quotes say it is marketable.
        holds_slot = state.status == "pending" and state.order_type != "limit"
        if holds_slot and (wait := await self.limiter.acquire(order_id)) is not None:
            return self._defer(wait)
        try:
            quotes = await self._quotes(state)
        except NoPool as exc:
            outcome = await self._no_pool(state, exc, attempt, message_id)
            await self._release_unless_executing(order_id)
            return outcome
        except TransientError:
            await self._release_unless_executing(order_id)
            raise
        command = RouteOrder(command_id=f"{order_id}:route:{message_id}", quotes=quotes)
        preview = decide(state, command)
        if preview and isinstance(preview[0], OrderRouting) and not holds_slot:
            if (wait := await self.limiter.acquire(order_id)) is not None:
                return self._defer(wait)
        try:
            state = await self._record("route", order_id, command, attempt)
        except DomainError:
            # Lost to a concurrent copy of this step (a re-drive) or to a cancel: the slot is
            # the order's, so it stays while the order executes and goes once it does not.
            await self._release_unless_executing(order_id)
            raise
        if state.status != "routing":
            await self._release_unless_executing(order_id)
            if state.is_terminal:
                await self._finished(state, "route")
            elif state.status == "waiting":
                log.info(
                    "waiting for the limit price",
                    extra={"orderId": order_id, "step": "route", "bestPrice": str(state.best_price)},
                )
            return DONE
        log.info(
            "routed",
            extra={
                "orderId": order_id,
                "userId": state.user_id,
                "step": "route",
                "dex": state.chosen_dex,
                "quotes": {q.dex: str(q.price) for q in state.quotes},
                "expectedOut": str(state.expected_out),
            },
        )
        return Outcome(next_step="build")

    async def _quotes(self, state: OrderState) -> list[Quote]:
        async def one(dex: Dex) -> Quote | BaseException:
            try:
                return await asyncio.wait_for(
                    dex.quote(state.token_in, state.token_out, state.amount), self.quote_timeout_s
                )
            except (TimeoutError, TransientError, NoPool) as exc:
                return exc

        results = await asyncio.gather(*(one(d) for d in self.dexes.values()))
        quotes = [r for r in results if isinstance(r, Quote)]
        if results and all(isinstance(r, NoPool) for r in results):
            raise results[0]  # type: ignore[misc]
        if not quotes:
            raise TransientError("no DEX answered with a quote: " + "; ".join(repr(r) for r in results))
        return quotes

    async def _no_pool(self, state: OrderState, exc: NoPool, attempt: int, message_id: str) -> Outcome:
        """A sniper order waits for its token's launch; any other order cannot trade the pair."""
        order_id = state.order_id
        if state.order_type == "sniper":
            token = next((t for t in (exc.token_in, exc.token_out) if not TOKENS[t].launched), exc.token_out)
            await self._record(
                "route", order_id, AwaitLaunch(command_id=f"{order_id}:await-launch", token=token), attempt
            )
            log.info(
                "sniper waiting for a launch", extra={"orderId": order_id, "step": "route", "token": token}
            )
            return DONE
        state = await self._record(
            "route",
            order_id,
            FailOrder(command_id=f"{order_id}:no-pool:{message_id}", step="route", error=str(exc)),
            attempt,
        )
        await self._finished(state, "route")
        return DONE

    async def _build(self, order_id: str, attempt: int, message_id: str) -> Outcome:
        state = await load(self.store, order_id)
        if state.status != "routing":
            return await self._skip(state)
        await self.limiter.renew(order_id)
        # A limit order is checked against a fresh quote: the price may have moved since routing.
        fresh = await self._quotes(state) if state.order_type == "limit" else []
        # The message id keeps the command unique if the order comes back through build later.
        command = BuildTransaction(command_id=f"{order_id}:build:{message_id}", fresh_quotes=fresh)
        state = await self._record("build", order_id, command, attempt)
        if state.status == "waiting":
            await self.limiter.release(order_id)
            log.info(
                "limit no longer met at build; waiting again",
                extra={"orderId": order_id, "step": "build", "bestPrice": str(state.best_price)},
            )
            return DONE
        return Outcome(next_step="submit")

    async def _submit(self, order_id: str, attempt: int, message_id: str) -> Outcome:
        state = await load(self.store, order_id)
        if state.status != "building":
            return await self._skip(state)
        quote, min_out = self._swap_terms(state)
        await self.limiter.renew(order_id)
        if state.swap_key is None:
            # The intent goes in the log before the swap goes out: a cancel decided at the
            # same time loses the append race, and a crash after this point re-sends under
            # the same key instead of swapping twice.
            state = await self._record(
                "submit",
                order_id,
                RequestSwap(command_id=f"{order_id}:request-swap", idempotency_key=f"{order_id}:swap"),
                attempt,
            )
        assert state.swap_key is not None
        tx_hash = await self.dexes[quote.dex].submit(order_id, quote, state.amount, min_out, state.swap_key)
        link = self.dexes[quote.dex].explorer_url(tx_hash)
        command = RecordSubmission(command_id=f"{order_id}:submit", tx_hash=tx_hash, explorer_url=link)
        await self._record("submit", order_id, command, attempt)
        log.info(
            "submitted", extra={"orderId": order_id, "step": "submit", "dex": quote.dex, "txHash": tx_hash}
        )
        return Outcome(next_step="confirm")

    async def _confirm(self, order_id: str, attempt: int, message_id: str) -> Outcome:
        state = await load(self.store, order_id)
        if state.status != "submitted":
            return await self._skip(state)
        quote, min_out = self._swap_terms(state)
        assert state.tx_hash is not None
        receipt = await self.dexes[quote.dex].confirm(state.tx_hash, quote, state.amount, min_out)
        state = await self._record(
            "confirm",
            order_id,
            RecordConfirmation(
                command_id=f"{order_id}:confirm",
                tx_hash=receipt.tx_hash,
                executed_price=receipt.executed_price,
                amount_out=receipt.amount_out,
            ),
            attempt,
        )
        await self._finished(state, "confirm")
        return DONE

    @staticmethod
    def _swap_terms(state: OrderState) -> tuple[Quote, Decimal]:
        quote = state.chosen_quote
        if quote is None or state.min_out is None:
            raise RuntimeError(f"order {state.order_id} has no route at {state.status}")
        return quote, state.min_out

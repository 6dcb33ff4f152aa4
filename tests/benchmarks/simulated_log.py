"""A realistic log of simulated orders, for the rebuild and audit benchmark and the projection tests.

Each order's lifecycle is decided and folded by the domain's own `decide`/`evolve`
(market orders pending → routing → building → swap requested → submitted →
confirmed, with transient retries, retries used up, slippage failures and
cancellations; limit orders that wait, re-quote, then fill, expire or are
cancelled; sniper orders that wait for a launch). Orders arrive at a steady
simulated rate and each step takes a while, so their events interleave in the log
as they do in production. `write_log` stores them with COPY (the hash-chain
trigger runs for each row as for any writer).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import psycopg

from domain.commands import (
    AwaitLaunch,
    BuildTransaction,
    CancelOrder,
    Command,
    ExpireOrder,
    PlaceOrder,
    RecordAttemptFailure,
    RecordConfirmation,
    RecordSubmission,
    RequestSwap,
    RouteOrder,
)
from domain.events import Event, OrderType, Quote, Step, encode_event, event_type
from domain.order import OrderState, decide, evolve
from domain.ports import EventMetadata
from domain.tokens import reference_price

# -- the simulated market ----------------------------------------------------------------

PAIRS = [("SOL", "USDC"), ("USDC", "SOL"), ("SOL", "BONK"), ("USDT", "JUP"), ("SOL", "RAY"), ("USDC", "USDT")]
AMOUNT_IN_USD = (20, 5_000)  # orders are worth this much, uniformly (roughly)
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Recorded:
    """One event as it will be stored: what COPY writes, in `at` order."""

    at: datetime
    stream_id: str
    version: int
    event: Event
    metadata: EventMetadata


@dataclass
class OrderDriver:
    """One order driven through the domain: each command is decided and folded."""

    order_id: str
    at: datetime
    state: OrderState = field(default_factory=OrderState)
    events: list[Recorded] = field(default_factory=list)

    def do(self, command: Command, actor: str, after_ms: float, attempt: int | None = None) -> list[Event]:
        self.at += timedelta(milliseconds=after_ms)
        events = decide(self.state, command)
        meta = EventMetadata(
            correlation_id=self.order_id,
            causation_id=command.command_id,
            actor=actor,
            attempt=attempt,
            issued_at=self.at,
        )
        for event in events:
            self.state = evolve(self.state, event)
            self.events.append(Recorded(self.at, self.order_id, self.state.version, event, meta))
            self.at += timedelta(microseconds=1)
        return events


def _quotes(rng: random.Random, token_in: str, token_out: str, shift: float = 0.0) -> list[Quote]:
    """Two DEXes around the reference price, moved by `shift` (a fraction)."""
    price = float(reference_price(token_in, token_out)) * (1 + shift)
    liquidity = Decimal(int(1_000_000 / float(reference_price("USDC", token_in)) + 1))
    return [
        Quote(
            dex=dex,
            price=Decimal(f"{price * (1 + rng.uniform(-0.004, 0.004)):.12g}"),
            fee=Decimal(fee),
            liquidity=liquidity,
        )
        for dex, fee in (("raydium", "0.0025"), ("meteora", "0.002"))
    ]


def _amount(rng: random.Random, token_in: str) -> Decimal:
    usd = rng.uniform(*AMOUNT_IN_USD)
    return Decimal(f"{usd / float(reference_price(token_in, 'USDC')):.6g}")


def _retry_or_fail(o: OrderDriver, rng: random.Random, step: Step) -> bool:
    """Maybe some transient failures of `step` (each retried after a backoff); True if
    the order survives them, False if it used up its attempts and failed."""
    attempt = 1
    while rng.random() < (0.06 if attempt == 1 else 0.4):
        last = attempt == MAX_ATTEMPTS
        o.do(
            RecordAttemptFailure(
                command_id=f"{o.order_id}:{step}:{attempt}:failed",
                step=step,
                attempt=attempt,
                max_attempts=MAX_ATTEMPTS,
                error=rng.choice(["rpc timeout", "connection reset", "blockhash expired"]),
                delay_ms=500 * 2 ** (attempt - 1),
            ),
            f"worker:{step}",
            rng.uniform(50, 200),
            attempt,
        )
        if last:
            return False
        o.at += timedelta(milliseconds=500 * 2 ** (attempt - 1))
        attempt += 1
    return True


def _execute(o: OrderDriver, rng: random.Random, fresh_quotes: list[Quote] | None = None) -> None:
    """From routing to the end: build, request, submit, confirm (or fail or be cancelled)."""
    oid = o.order_id
    if rng.random() < 0.02:
        o.do(CancelOrder(command_id=f"{oid}:cancel"), "api", rng.uniform(5, 50))
        return
    o.do(BuildTransaction(command_id=f"{oid}:build", fresh_quotes=fresh_quotes or []), "worker:build", 5)
    if o.state.status != "building":  # a limit order whose price moved away again: waits (then expires)
        return
    o.do(RequestSwap(command_id=f"{oid}:swap", idempotency_key=f"{oid}:swap"), "worker:submit", 5)
    if not _retry_or_fail(o, rng, "submit"):
        return
    tx_hash = uuid.uuid4().hex + uuid.uuid4().hex[:24]
    link = f"https://explorer.solana.com/tx/{tx_hash}?cluster=devnet"
    submitted = RecordSubmission(command_id=f"{oid}:submit", tx_hash=tx_hash, explorer_url=link)
    o.do(submitted, "worker:submit", rng.uniform(20, 80))
    if not _retry_or_fail(o, rng, "confirm"):
        return
    expected = o.state.expected_out or Decimal(0)
    slipped = rng.random() < 0.03
    out = expected * Decimal("0.97") if slipped else expected * Decimal(f"{1 - rng.uniform(0, 0.004):.6f}")
    price = out / o.state.amount
    o.do(
        RecordConfirmation(
            command_id=f"{oid}:confirm",
            tx_hash=tx_hash,
            executed_price=price.quantize(Decimal("1e-12")),
            amount_out=out.quantize(Decimal("1e-12")),
        ),
        "worker:confirm",
        rng.uniform(2000, 3000),
    )


def simulate_order(rng: random.Random, at: datetime, users: int = 50) -> list[Recorded]:
    """One order's whole life, from a random but realistic mix."""
    oid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    o = OrderDriver(oid, at)
    kind = rng.random()
    order_type: OrderType = "market" if kind < 0.72 else "limit" if kind < 0.93 else "sniper"
    token_in, token_out = ("SOL", "LAUNCH") if order_type == "sniper" else rng.choice(PAIRS)
    amount = _amount(rng, token_in)
    user = f"user-{min(int(rng.paretovariate(1.2)), users)}"
    quotes = _quotes(rng, token_in, token_out) if order_type != "sniper" else []
    limit_price = expires_at = None
    if order_type == "limit":
        # Above today's price: the order waits until the market comes to it (or expires).
        limit_price = Decimal(f"{float(reference_price(token_in, token_out)) * 1.01:.12g}")
        expires_at = at + timedelta(seconds=rng.choice([60, 300, 900]))
    o.do(
        PlaceOrder(
            command_id=f"{oid}:place",
            order_id=oid,
            user_id=user,
            order_type=order_type,
            token_in=token_in,
            token_out=token_out,
            amount=amount,
            slippage_tolerance=Decimal("0.01"),
            limit_price=limit_price,
            expires_at=expires_at,
        ),
        "api",
        0,
    )
    if order_type == "market" and rng.random() < 0.03:
        o.do(CancelOrder(command_id=f"{oid}:cancel"), "api", rng.uniform(1, 20))
        return o.events
    if order_type == "sniper":
        o.do(AwaitLaunch(command_id=f"{oid}:route", token="LAUNCH"), "worker:route", rng.uniform(5, 20))
        o.at += timedelta(seconds=rng.uniform(1, 120))  # until the launch
        o.do(RouteOrder(command_id=f"{oid}:route:launch", quotes=_launch_quotes(rng)), "worker:route", 5)
        _execute(o, rng)
        return o.events
    if not _retry_or_fail(o, rng, "route"):
        return o.events
    o.do(RouteOrder(command_id=f"{oid}:route", quotes=quotes), "worker:route", rng.uniform(5, 300))
    if order_type == "market":
        _execute(o, rng)
        return o.events
    # A limit order: waits, is re-quoted as the market drifts up, then fills, expires or is cancelled.
    assert expires_at is not None
    outcome = rng.random()
    for i in range(rng.randint(0, 3)):
        o.at += timedelta(seconds=rng.uniform(2, 20))
        if o.at >= expires_at:
            break
        requote = _quotes(rng, token_in, token_out, shift=0.002 * (i + 1))
        o.do(RouteOrder(command_id=f"{oid}:route:{i}", quotes=requote), "worker:route", 5)
    if outcome < 0.55 and o.at < expires_at:
        o.at += timedelta(seconds=rng.uniform(1, 10))
        filled = _quotes(rng, token_in, token_out, shift=0.03)
        o.do(RouteOrder(command_id=f"{oid}:route:fill", quotes=filled), "worker:route", 5)
        _execute(o, rng, fresh_quotes=_quotes(rng, token_in, token_out, shift=0.03))
    elif outcome < 0.85:
        o.at = max(o.at, expires_at)
        o.do(ExpireOrder(command_id=f"{oid}:expire", now=expires_at), "scheduler", rng.uniform(0, 2000))
    else:
        o.do(CancelOrder(command_id=f"{oid}:cancel"), "api", rng.uniform(1000, 30_000))
    return o.events


def _launch_quotes(rng: random.Random) -> list[Quote]:
    price = 150 / 0.01
    return [
        Quote(dex="raydium", price=Decimal(f"{price * rng.uniform(0.99, 1.01):.12g}"), fee=Decimal("0.0025"),
              liquidity=Decimal(500)),
        Quote(dex="meteora", price=Decimal(f"{price * rng.uniform(0.99, 1.01):.12g}"), fee=Decimal("0.002"),
              liquidity=Decimal(400)),
    ]  # fmt: skip


def simulate_log(seed: int, min_events: int, orders_per_s: float = 200.0) -> list[Recorded]:
    """Orders arriving at a steady rate until at least `min_events`, every event in time order."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 24, tzinfo=UTC)
    events: list[Recorded] = []
    i = 0
    while len(events) < min_events:
        at = start + timedelta(seconds=i / orders_per_s)
        events.extend(simulate_order(rng, at))
        i += 1
    events.sort(key=lambda r: r.at)
    return events


# -- writing the log ------------------------------------------------------------------------

_meta_encoder = msgspec.json.Encoder()


def copy_rows(events: list[Recorded]) -> Iterator[tuple[Any, ...]]:
    for r in events:
        yield (
            r.stream_id,
            r.version,
            event_type(r.event),
            encode_event(r.event).decode(),
            _meta_encoder.encode(r.metadata).decode(),
            r.at,
        )


def write_log(database_url: str, events: list[Recorded]) -> None:
    """COPY the events into `events`, in order (positions follow the order of rows)."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY events (stream_id, version, type, data, metadata, recorded_at) FROM STDIN"
        ) as copy:
            for row in copy_rows(events):
                copy.write_row(row)
        conn.commit()
        conn.execute("ANALYZE events")


__all__ = ["OrderDriver", "Recorded", "simulate_log", "simulate_order", "write_log"]

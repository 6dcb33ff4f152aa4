"""The mock DEXes of the brief: Raydium and Meteora with made-up but honest numbers.

- quote: sleeps 200–400 ms; Raydium `p*(0.98+r*0.04)` fee 0.3%,
  Meteora `p*(0.97+r*0.05)` fee 0.2%, where `p` is the market's current price
  (adapters/market.py; the reference price without one); each reports its
  pool's tokenIn reserve.
- a swap (sign, send, then confirm) takes 2–3 s in all and settles within 0.5% of the
  quoted output. The mock is stateless between submit and confirm: the duration
  and the fill are derived from the transaction hash, so a confirm can run in any
  worker process.

Every sleep is multiplied by `latency_scale` (0 makes the mock instant).
Failures can be injected: a rate, and "fail the first N submissions".
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from decimal import Decimal
from typing import Protocol

import redis.asyncio as aioredis
from solders.signature import Signature

from adapters.redis_layout import RedisLayout
from domain.errors import NoPool, TransientError
from domain.events import Quote
from domain.ports import SignedSwap, SwapPlan, SwapReceipt, SwapTerms
from domain.routing import expected_out
from domain.tokens import TOKENS, reference_price

# Share of the swap's duration spent sending it; the rest is waiting to settle.
_SUBMIT_SHARE = Decimal("0.2")


class FailurePlan:
    """Injected swap failures, shared by every mock DEX in one process."""

    def __init__(
        self, rate: Decimal = Decimal(0), first_n: int = 0, rng: random.Random | None = None
    ) -> None:
        self.rate = rate
        self._remaining = first_n
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def should_fail(self) -> bool:
        with self._lock:
            if self._remaining > 0:
                self._remaining -= 1
                return True
            return self.rate > 0 and Decimal(str(self._rng.random())) < self.rate


class PriceSource(Protocol):
    """The market the mock quotes around (units of tokenOut per tokenIn now)."""

    async def price(self, token_in: str, token_out: str) -> Decimal: ...

    async def has_pool(self, token_in: str, token_out: str) -> bool: ...


class SwapLedger(Protocol):
    """The mock's "chain": which swaps were really executed, shared by every worker process."""

    async def execute(self, order_id: str, tx_hash: str) -> bool:
        """Record an execution; False if this signature already executed (a re-send)."""
        ...


class RedisSwapLedger:
    """Executions in Redis: `{prefix}:mockchain:swaps:{order_id}` is the set of signatures
    executed for that order (more than one would be a double swap), kept a day."""

    def __init__(self, client: aioredis.Redis, layout: RedisLayout) -> None:
        self.client = client
        self.layout = layout

    async def execute(self, order_id: str, tx_hash: str) -> bool:
        key = self.layout.mockchain_swaps(order_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.sadd(key, tx_hash)
            pipe.expire(key, 86_400)
            added, _ = await pipe.execute()
        return bool(added)


class MockDex:
    def __init__(
        self,
        name: str,
        *,
        band_low: Decimal,
        band_width: Decimal,
        fee: Decimal,
        pool_usd: Decimal,
        quote_ms: tuple[int, int] = (200, 400),
        swap_ms: tuple[int, int] = (2000, 3000),
        latency_scale: Decimal = Decimal(1),
        failures: FailurePlan | None = None,
        ledger: SwapLedger | None = None,
        market: PriceSource | None = None,
        rng: random.Random | None = None,
        explorer_tx_url: str | None = None,
    ) -> None:
        self.name = name
        self.band_low = band_low
        self.band_width = band_width
        self.fee = fee
        self.pool_usd = pool_usd
        self.quote_ms = quote_ms
        self.swap_ms = swap_ms
        self.latency_scale = latency_scale
        self.failures = failures or FailurePlan()
        self.ledger = ledger
        self.market = market
        self.explorer_tx_url = explorer_tx_url
        self._rng = rng or random.Random()

    async def _sleep_ms(self, ms: float) -> None:
        seconds = float(Decimal(str(ms)) * self.latency_scale) / 1000
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def quote(self, token_in: str, token_out: str, amount: Decimal) -> Quote:
        await self._sleep_ms(self._rng.uniform(*self.quote_ms))
        pooled = (
            await self.market.has_pool(token_in, token_out)
            if self.market
            else TOKENS[token_in].launched and TOKENS[token_out].launched
        )
        if not pooled:
            raise NoPool(token_in, token_out)
        base = (
            await self.market.price(token_in, token_out)
            if self.market
            else reference_price(token_in, token_out)
        )
        r = Decimal(str(self._rng.random()))
        # Pool depth varies ±50% around the venue's typical size, in tokenIn units.
        depth = Decimal(str(self._rng.uniform(0.5, 1.5)))
        reserve_in = self.pool_usd * depth / 2 / TOKENS[token_in].reference_usd
        return Quote(
            dex=self.name,
            price=base * (self.band_low + r * self.band_width),
            fee=self.fee,
            liquidity=reserve_in.quantize(Decimal("1e-6")),
        )

    async def plan(self, terms: SwapTerms) -> SwapPlan:
        """The mock has no compute budget to size and never runs out of funds."""
        return SwapPlan()

    async def sign(self, terms: SwapTerms, idempotency_key: str) -> SignedSwap:
        # Like a signed Solana transaction, the same key always yields the same signature,
        # and the "chain" executes a signature once: re-sending cannot swap twice.
        return SignedSwap(signature=str(Signature(hashlib.sha512(idempotency_key.encode()).digest())))

    async def send(self, swap: SignedSwap, terms: SwapTerms) -> None:
        if self.failures.should_fail():
            await self._sleep_ms(self._rng.uniform(*self.quote_ms))
            raise TransientError(f"{self.name}: RPC error sending transaction (injected failure)")
        if self.ledger is not None:
            await self.ledger.execute(terms.order_id, swap.signature)
        await self._sleep_ms(float(self._duration_ms(swap.signature) * _SUBMIT_SHARE))

    def explorer_url(self, tx_hash: str) -> str | None:
        return self.explorer_tx_url.replace("{tx_hash}", tx_hash) if self.explorer_tx_url else None

    async def confirm(self, swap: SignedSwap, terms: SwapTerms) -> SwapReceipt:
        tx_hash = swap.signature
        await self._sleep_ms(float(self._duration_ms(tx_hash) * (1 - _SUBMIT_SHARE)))
        # Fill: up to 0.5% below the quoted output, fixed by the hash.
        shortfall = Decimal(_unit(tx_hash, "fill")) * Decimal("0.005")
        out = (expected_out(terms.quote, terms.amount) * (1 - shortfall)).quantize(Decimal("1e-12"))
        return SwapReceipt(
            tx_hash=tx_hash,
            executed_price=(out / terms.amount).quantize(Decimal("1e-12")),
            amount_out=out,
        )

    async def execute_swap(self, terms: SwapTerms, idempotency_key: str | None = None) -> SwapReceipt:
        """The brief's `executeSwap`: sign, send and wait for the settlement (2–3 s)."""
        key = idempotency_key or self._rng.randbytes(16).hex()
        swap = await self.sign(terms, key)
        await self.send(swap, terms)
        return await self.confirm(swap, terms)

    def _duration_ms(self, tx_hash: str) -> Decimal:
        low, high = self.swap_ms
        return Decimal(low) + Decimal(_unit(tx_hash, "duration")) * (high - low)


def _unit(tx_hash: str, purpose: str) -> str:
    """A number in [0, 1) derived from the hash, as a decimal string."""
    digest = hashlib.sha256(f"{purpose}:{tx_hash}".encode()).digest()
    return str(Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2**64))


def raydium(**kwargs: object) -> MockDex:
    return MockDex(
        "raydium",
        band_low=Decimal("0.98"),
        band_width=Decimal("0.04"),
        fee=Decimal("0.003"),
        pool_usd=Decimal(8_000_000),
        **kwargs,  # type: ignore[arg-type]
    )


def meteora(**kwargs: object) -> MockDex:
    return MockDex(
        "meteora",
        band_low=Decimal("0.97"),
        band_width=Decimal("0.05"),
        fee=Decimal("0.002"),
        pool_usd=Decimal(5_000_000),
        **kwargs,  # type: ignore[arg-type]
    )

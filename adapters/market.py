"""The mock market: USD prices per token that move, shared by every process.

Prices live in Redis (`{prefix}:market:usd`, a hash token → USD price; adapters/redis_layout.py) so the
API, every worker process and the scheduler see one market. The scheduler's
leader advances it every tick with a seeded, mean-reverting random walk around
each token's reference price (stablecoins stay put); operators and tests can set
prices directly (`PUT /api/market/prices`), and with volatility 0 a price set
stays exactly where it was put, which gives tests a deterministic price path.

Tokens marked `launched=False` (domain/tokens.py) have no pools until launched
(`POST /api/market/launches`, `orderengine launch TOKEN`, or MOCK_LAUNCHES at a set
time); the set of launched ones is `{prefix}:market:launched`.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from decimal import Decimal

import redis.asyncio as aioredis

from adapters.redis_layout import RedisLayout
from domain.tokens import TOKENS

STABLECOINS = frozenset({"USDC", "USDT"})


# A tick never takes a price further than this factor from its reference price. Without
# reversion the walk is unbounded: MARKET_VOLATILITY=0.5 with MARKET_REVERSION=0 reached,
# within 2,000 ticks, a price Decimal could not quantize (and others that rounded to 0),
# and every tick failed from then on.
MAX_DEVIATION = 1000
_BAND = math.log(MAX_DEVIATION)


def random_walk_step(
    prices: dict[str, Decimal], rng: random.Random, volatility: float, reversion: float
) -> dict[str, Decimal]:
    """One tick: each non-stable token's log price moves by `volatility` × N(0,1)
    and is pulled back toward its reference price by `reversion` (0..1); it stays
    within MAX_DEVIATION of the reference (a price set further out only moves back)."""
    moved: dict[str, Decimal] = {}
    for symbol, token in TOKENS.items():
        current = prices.get(symbol, token.reference_usd)
        if symbol in STABLECOINS or volatility == 0:
            moved[symbol] = current
            continue
        deviation = math.log(float(current / token.reference_usd))
        step = -reversion * deviation + volatility * rng.gauss(0.0, 1.0)
        low, high = min(-_BAND, deviation), max(_BAND, deviation)
        if not low <= deviation + step <= high:
            step = min(max(deviation + step, low), high) - deviation
        moved[symbol] = (current * Decimal(str(math.exp(step)))).quantize(Decimal("1e-12"))
    return moved


class RedisMarket:
    """Reads and writes the shared USD prices; missing tokens fall back to reference prices.

    Also the `Launches` port of the mock market: tokens whose pools open during a run.
    """

    def __init__(self, client: aioredis.Redis, layout: RedisLayout, *, fresh_for_s: float = 0.02) -> None:
        self.client = client
        self.key = layout.market_prices
        self.launches = layout.market_launched
        # Prices read less than this long ago are used again: every quote of a burst of
        # orders (two venues each) shares one read; a tick moves them once a second.
        self.fresh_for_s = fresh_for_s
        self._read: tuple[float, asyncio.Future[dict[str, Decimal]]] | None = None

    async def usd_prices(self) -> dict[str, Decimal]:
        now = time.monotonic()
        if self._read is not None and now - self._read[0] < self.fresh_for_s:
            return await asyncio.shield(self._read[1])
        future: asyncio.Future[dict[str, Decimal]] = asyncio.get_running_loop().create_future()
        self._read = (now, future)
        try:
            prices = await self._read_prices()
        except BaseException as exc:
            self._read = None
            future.set_exception(exc)
            future.exception()  # retrieved: only the callers waiting on it see it
            raise
        future.set_result(prices)
        return prices

    async def _read_prices(self) -> dict[str, Decimal]:
        stored = await self.client.hgetall(self.key)
        prices = {t.symbol: t.reference_usd for t in TOKENS.values()}
        for raw_symbol, raw_price in stored.items():
            symbol = raw_symbol.decode() if isinstance(raw_symbol, bytes) else str(raw_symbol)
            if symbol in prices:
                prices[symbol] = Decimal(raw_price.decode() if isinstance(raw_price, bytes) else raw_price)
        return prices

    async def price(self, token_in: str, token_out: str) -> Decimal:
        """Units of `token_out` per unit of `token_in` now."""
        usd = await self.usd_prices()
        return usd[token_in] / usd[token_out]

    async def set_prices(self, prices: dict[str, Decimal]) -> None:
        if prices:
            await self.client.hset(self.key, mapping={k: str(v) for k, v in prices.items()})
            self._read = None  # this process sees its own change at once

    async def advance(self, rng: random.Random, volatility: float, reversion: float) -> dict[str, Decimal]:
        moved = random_walk_step(await self._read_prices(), rng, volatility, reversion)
        await self.set_prices(moved)
        return moved

    async def is_launched(self, token: str) -> bool:
        """Pools exist for the token: it always had them, or it was launched."""
        return TOKENS[token].launched or bool(await self.client.sismember(self.launches, token))

    async def has_pool(self, token_in: str, token_out: str) -> bool:
        return await self.is_launched(token_in) and await self.is_launched(token_out)

    async def launch(self, token: str) -> bool:
        """Open pools for `token`; False if it had them already."""
        if TOKENS[token].launched:
            return False
        return bool(await self.client.sadd(self.launches, token))

"""The mock market: its random walk (pure), and how often it reads the shared prices."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from adapters.market import MAX_DEVIATION, STABLECOINS, RedisMarket, random_walk_step
from adapters.redis_layout import RedisLayout
from domain.tokens import TOKENS


def walk(steps: int, seed: int, volatility: float = 0.01, reversion: float = 0.05) -> dict[str, Decimal]:
    rng, prices = random.Random(seed), {}
    for _ in range(steps):
        prices = random_walk_step(prices, rng, volatility, reversion)
    return prices


def test_the_walk_is_deterministic_for_a_seed() -> None:
    assert walk(50, seed=1) == walk(50, seed=1)
    assert walk(50, seed=1) != walk(50, seed=2)


def test_stablecoins_stay_at_their_reference_price() -> None:
    prices = walk(100, seed=3)
    for symbol in STABLECOINS:
        assert prices[symbol] == TOKENS[symbol].reference_usd


def test_prices_move_but_revert_toward_their_reference() -> None:
    prices = walk(2000, seed=4)
    sol = prices["SOL"] / TOKENS["SOL"].reference_usd
    assert prices["SOL"] != TOKENS["SOL"].reference_usd
    # sigma 1% a tick with 5% reversion keeps the log price within a few tenths of the base.
    assert Decimal("0.5") < sol < Decimal("2")


def test_zero_volatility_freezes_the_market() -> None:
    start = {"SOL": Decimal("170")}
    assert random_walk_step(start, random.Random(0), 0.0, 0.5)["SOL"] == Decimal("170")


def test_the_most_volatile_walk_without_reversion_stays_within_its_band() -> None:
    # MARKET_VOLATILITY just below 1 and MARKET_REVERSION=0, the extremes the settings allow:
    # unbounded, the walk reached unquantizable or zero prices within 2,000 ticks.
    rng, prices = random.Random(7), {}
    for _ in range(5000):
        prices = random_walk_step(prices, rng, 0.99, 0.0)
        for symbol, price in prices.items():
            ratio = price / TOKENS[symbol].reference_usd
            assert 1 / Decimal(MAX_DEVIATION) * Decimal("0.999") <= ratio <= MAX_DEVIATION * Decimal("1.001")


def test_a_price_set_beyond_the_band_only_moves_back() -> None:
    far = TOKENS["SOL"].reference_usd * 5000
    rng = random.Random(1)
    for _ in range(50):
        assert random_walk_step({"SOL": far}, rng, 0.5, 0.0)["SOL"] <= far


class CountingRedis:
    """Just enough of a Redis client for RedisMarket, counting its reads."""

    def __init__(self) -> None:
        self.stored: dict[str, str] = {}
        self.reads = 0

    async def hgetall(self, key: str) -> dict[str, str]:
        self.reads += 1
        await asyncio.sleep(0)
        return dict(self.stored)

    async def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.stored.update(mapping)


def market(fresh_for_s: float = 60.0) -> tuple[RedisMarket, CountingRedis]:
    client = CountingRedis()
    return RedisMarket(client, RedisLayout("t"), fresh_for_s=fresh_for_s), client  # type: ignore[arg-type]


def test_quotes_at_the_same_moment_share_one_read_of_the_prices() -> None:
    m, client = market()

    async def both() -> list[Decimal]:
        return list(await asyncio.gather(m.price("SOL", "USDC"), m.price("SOL", "USDT")))

    assert asyncio.run(both()) == [TOKENS["SOL"].reference_usd] * 2
    assert client.reads == 1


def test_prices_set_by_this_process_are_seen_at_once() -> None:
    m, client = market()

    async def scenario() -> Decimal:
        await m.price("SOL", "USDC")
        await m.set_prices({"SOL": Decimal("170")})
        return await m.price("SOL", "USDC")

    assert asyncio.run(scenario()) == Decimal("170")
    assert client.reads == 2


def test_prices_are_read_again_once_they_are_older_than_their_freshness() -> None:
    m, client = market(fresh_for_s=0.0)

    async def scenario() -> None:
        await m.price("SOL", "USDC")
        await m.price("SOL", "USDC")

    asyncio.run(scenario())
    assert client.reads == 2

"""The mock Raydium and Meteora: price bands, fees, signatures, fills, injected failures.

Everything runs with `latency_scale=0` except the one latency test, and every random
source is seeded so a failure replays.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest

from adapters.mock_dex import FailurePlan, MockDex, meteora, raydium
from domain.errors import TransientError
from domain.events import Quote
from domain.ports import SignedSwap, SwapPlan, SwapReceipt, SwapTerms
from domain.routing import expected_out
from domain.tokens import reference_price

# Prices are quantized to 12 places, which can round a hair outside the band on pairs
# whose reference price has few significant digits at that scale.
PRICE_QUANTUM = Decimal("1e-12")
PAIRS = [("SOL", "USDC"), ("USDC", "SOL"), ("BONK", "SOL"), ("JUP", "RAY"), ("USDC", "USDT")]
QUOTES_PER_PAIR = 200
BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

DexFactory = Callable[..., MockDex]


def instant(factory: DexFactory, seed: int = 7, **kwargs: object) -> MockDex:
    return factory(latency_scale=Decimal(0), rng=random.Random(seed), **kwargs)


def many_quotes(dex: MockDex, token_in: str, token_out: str, n: int = QUOTES_PER_PAIR) -> list[Quote]:
    async def run() -> list[Quote]:
        return [await dex.quote(token_in, token_out, Decimal(1)) for _ in range(n)]

    return asyncio.run(run())


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + BASE58_ALPHABET.index(char)
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * leading_zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def a_quote(dex: MockDex) -> Quote:
    return asyncio.run(dex.quote("SOL", "USDC", Decimal(2)))


# --- quotes -------------------------------------------------------------------------


@pytest.mark.parametrize(("token_in", "token_out"), PAIRS)
def test_raydium_prices_stay_within_two_percent_of_reference(token_in: str, token_out: str) -> None:
    base = reference_price(token_in, token_out)
    prices = [q.price for q in many_quotes(instant(raydium), token_in, token_out)]
    assert min(prices) >= base * Decimal("0.98") - PRICE_QUANTUM
    assert max(prices) <= base * Decimal("1.02") + PRICE_QUANTUM


@pytest.mark.parametrize(("token_in", "token_out"), PAIRS)
def test_meteora_prices_stay_between_minus_three_and_plus_two_percent(token_in: str, token_out: str) -> None:
    base = reference_price(token_in, token_out)
    prices = [q.price for q in many_quotes(instant(meteora), token_in, token_out)]
    assert min(prices) >= base * Decimal("0.97") - PRICE_QUANTUM
    assert max(prices) <= base * Decimal("1.02") + PRICE_QUANTUM


def test_meteora_band_reaches_below_raydiums_floor() -> None:
    # Over many quotes the wider band shows: some Meteora price falls under base * 0.98.
    base = reference_price("SOL", "USDC")
    prices = [q.price for q in many_quotes(instant(meteora), "SOL", "USDC")]
    assert any(p < base * Decimal("0.98") for p in prices)


def test_quotes_vary_between_calls() -> None:
    prices = {q.price for q in many_quotes(instant(raydium), "SOL", "USDC", n=20)}
    assert len(prices) > 1


@pytest.mark.parametrize(
    ("factory", "name", "fee"), [(raydium, "raydium", "0.003"), (meteora, "meteora", "0.002")]
)
def test_quote_names_the_dex_and_carries_its_fee(factory: DexFactory, name: str, fee: str) -> None:
    quotes = many_quotes(instant(factory), "SOL", "USDC", n=20)
    assert {(q.dex, q.fee) for q in quotes} == {(name, Decimal(fee))}


@pytest.mark.parametrize("factory", [raydium, meteora])
@pytest.mark.parametrize(("token_in", "token_out"), PAIRS)
def test_quote_reports_positive_liquidity(factory: DexFactory, token_in: str, token_out: str) -> None:
    assert all(q.liquidity > 0 for q in many_quotes(instant(factory), token_in, token_out, n=50))


def test_same_seed_gives_the_same_quotes() -> None:
    assert many_quotes(instant(raydium, seed=3), "SOL", "USDC", 10) == many_quotes(
        instant(raydium, seed=3), "SOL", "USDC", 10
    )


def test_quote_takes_at_least_the_scaled_minimum_latency() -> None:
    scale = Decimal("0.05")
    dex = raydium(latency_scale=scale, rng=random.Random(11))
    minimum_s = float(Decimal(dex.quote_ms[0]) * scale) / 1000

    async def timed() -> float:
        start = time.perf_counter()
        await dex.quote("SOL", "USDC", Decimal(1))
        return time.perf_counter() - start

    elapsed = asyncio.run(timed())
    assert elapsed >= minimum_s


# --- submit and confirm -------------------------------------------------------------


def terms(quote: Quote, amount: Decimal = Decimal(2)) -> SwapTerms:
    return SwapTerms(
        order_id="order-1", token_in="SOL", token_out="USDC", amount=amount, min_out=Decimal(0), quote=quote
    )


def submit(dex: MockDex, quote: Quote, amount: Decimal = Decimal(2), key: str | None = None) -> str:
    """Sign under a key (a fresh one unless given) and send; the signature."""

    async def signed_and_sent() -> str:
        swap = await dex.sign(terms(quote, amount), key or uuid.uuid4().hex)
        await dex.send(swap, terms(quote, amount))
        return swap.signature

    return asyncio.run(signed_and_sent())


def confirm(dex: MockDex, tx_hash: str, quote: Quote, amount: Decimal = Decimal(2)) -> SwapReceipt:
    return asyncio.run(dex.confirm(SignedSwap(signature=tx_hash), terms(quote, amount)))


def test_the_same_idempotency_key_signs_the_same_swap() -> None:
    dex = instant(raydium)
    q = a_quote(dex)
    assert submit(dex, q, key="order-9:swap") == submit(dex, q, key="order-9:swap")
    assert submit(dex, q, key="order-9:swap") != submit(dex, q, key="order-8:swap")


def test_the_mock_plans_no_compute_budget() -> None:
    dex = instant(raydium)
    assert asyncio.run(dex.plan(terms(a_quote(dex)))) == SwapPlan()


def test_submit_returns_a_base58_encoded_64_byte_signature() -> None:
    dex = instant(raydium)
    tx_hash = submit(dex, a_quote(dex))
    assert set(tx_hash) <= set(BASE58_ALPHABET)
    assert 80 <= len(tx_hash) <= 88
    assert len(b58decode(tx_hash)) == 64


def test_the_explorer_link_names_the_transaction_or_is_absent() -> None:
    linked = raydium(explorer_tx_url="https://explorer.solana.com/tx/{tx_hash}?cluster=devnet")
    assert linked.explorer_url("5Yq") == "https://explorer.solana.com/tx/5Yq?cluster=devnet"
    assert raydium().explorer_url("5Yq") is None


def test_each_submission_gets_a_new_signature() -> None:
    dex = instant(raydium)
    q = a_quote(dex)
    assert len({submit(dex, q) for _ in range(10)}) == 10


def test_confirm_is_deterministic_for_a_tx_hash() -> None:
    dex = instant(meteora)
    q = a_quote(dex)
    tx_hash = submit(dex, q)
    first, second = confirm(dex, tx_hash, q), confirm(instant(meteora, seed=99), tx_hash, q)
    assert first == second
    assert first.tx_hash == tx_hash


def test_confirm_fill_stays_within_half_a_percent_below_the_expected_output() -> None:
    dex = instant(raydium)
    amount = Decimal(2)
    fills: list[Decimal] = []
    for _ in range(100):
        q = a_quote(dex)
        expected = expected_out(q, amount)
        receipt = confirm(dex, submit(dex, q, amount), q, amount)
        assert expected * Decimal("0.995") - PRICE_QUANTUM <= receipt.amount_out <= expected
        fills.append(receipt.amount_out / expected)
    assert len(set(fills)) > 1  # the fill really varies with the hash


def test_confirm_reports_the_executed_price_of_the_fill() -> None:
    dex = instant(raydium)
    q = a_quote(dex)
    receipt = confirm(dex, submit(dex, q), q, Decimal(2))
    assert abs(receipt.executed_price - receipt.amount_out / 2) <= PRICE_QUANTUM


def test_failure_plan_fails_exactly_the_first_two_submissions() -> None:
    dex = instant(raydium, failures=FailurePlan(first_n=2))
    q = a_quote(dex)
    outcomes: list[str] = []
    for _ in range(5):
        try:
            submit(dex, q)
            outcomes.append("ok")
        except TransientError:
            outcomes.append("failed")
    assert outcomes == ["failed", "failed", "ok", "ok", "ok"]


def test_failure_plan_is_shared_by_the_dexes_that_hold_it() -> None:
    plan = FailurePlan(first_n=2)
    ray, met = instant(raydium, failures=plan), instant(meteora, failures=plan)
    q = a_quote(ray)
    with pytest.raises(TransientError):
        submit(ray, q)
    with pytest.raises(TransientError):
        submit(met, q)
    assert submit(ray, q)


def test_no_failure_plan_means_no_injected_failures() -> None:
    dex = instant(meteora)
    q = a_quote(dex)
    assert all(submit(dex, q) for _ in range(50))


def test_failure_rate_of_one_fails_every_submission() -> None:
    dex = instant(raydium, failures=FailurePlan(rate=Decimal(1), rng=random.Random(1)))
    q = a_quote(dex)
    for _ in range(5):
        with pytest.raises(TransientError, match="raydium"):
            submit(dex, q)

"""Quoting both DEXes: one slow or failing venue never blocks routing to the other."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from domain.errors import NoPool, TransientError
from domain.events import Quote
from domain.order import OrderState
from domain.ports import SwapReceipt
from domain.services.quoting import quote_all

STATE = OrderState(order_id="o", status="pending", token_in="SOL", token_out="USDC", amount=Decimal(1))


class FakeDex:
    def __init__(self, name: str, *, delay: float = 0.0, error: Exception | None = None) -> None:
        self.name, self.delay, self.error = name, delay, error

    async def quote(self, token_in: str, token_out: str, amount: Decimal) -> Quote:
        await asyncio.sleep(self.delay)
        if self.error:
            raise self.error
        return Quote(dex=self.name, price=Decimal(150), fee=Decimal("0.003"), liquidity=Decimal(10_000))

    async def submit(self, *args: object) -> str:  # pragma: no cover - not used here
        raise NotImplementedError

    async def confirm(self, *args: object) -> SwapReceipt:  # pragma: no cover - not used here
        raise NotImplementedError


def quote(*dexes: FakeDex, timeout: float = 0.05) -> list[Quote]:
    return asyncio.run(quote_all(dexes, STATE, timeout)).quotes


def test_a_dex_that_times_out_is_left_out_and_the_other_quotes() -> None:
    quotes = quote(FakeDex("raydium", delay=5), FakeDex("meteora"))
    assert [q.dex for q in quotes] == ["meteora"]


def test_a_dex_that_fails_is_left_out_and_the_other_quotes() -> None:
    failing = FakeDex("raydium", error=TransientError("rpc down"))
    quotes = quote(failing, FakeDex("meteora"))
    assert [q.dex for q in quotes] == ["meteora"]


def test_no_answer_at_all_is_a_transient_error() -> None:
    with pytest.raises(TransientError, match="no DEX answered"):
        quote(FakeDex("raydium", delay=5), FakeDex("meteora", error=TransientError("x")))


def test_no_pool_anywhere_is_reported_as_no_pool() -> None:
    no_pool = NoPool("USDC", "LAUNCH")
    with pytest.raises(NoPool):
        quote(FakeDex("raydium", error=no_pool), FakeDex("meteora", error=no_pool))


def test_each_venue_left_out_is_named_with_its_reason() -> None:
    failing = FakeDex("raydium", error=TransientError("raydium: pool 7Ab has swaps disabled (status 4)"))
    round_ = asyncio.run(quote_all([failing, FakeDex("orca", delay=5), FakeDex("meteora")], STATE, 0.05))
    assert [q.dex for q in round_.quotes] == ["meteora"]
    assert round_.unavailable == {
        "raydium": "raydium: pool 7Ab has swaps disabled (status 4)",
        "orca": "no quote within the quote timeout",
    }

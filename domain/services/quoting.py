"""Quoting every venue at once: one slow or failing venue never blocks routing to the others."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import msgspec

from domain.errors import NoPool, TransientError
from domain.events import Quote
from domain.order import OrderState
from domain.ports import Dex


class QuoteRound(msgspec.Struct, frozen=True, kw_only=True):
    """The quotes of the venues that answered, and why each other venue was left out."""

    quotes: list[Quote]
    unavailable: dict[str, str] = {}


async def quote_all(dexes: Iterable[Dex], state: OrderState, timeout_s: float) -> QuoteRound:
    """The quotes of every venue that answered within `timeout_s`, and the others' reasons.

    NoPool when no venue has a pool for the pair (a sniper order then waits for the
    launch); TransientError when none answered at all.
    """

    async def one(dex: Dex) -> Quote | BaseException:
        try:
            return await asyncio.wait_for(dex.quote(state.token_in, state.token_out, state.amount), timeout_s)
        except (TimeoutError, TransientError, NoPool) as exc:
            return exc

    venues = list(dexes)
    results = await asyncio.gather(*(one(d) for d in venues))
    quotes = [r for r in results if isinstance(r, Quote)]
    if results and all(isinstance(r, NoPool) for r in results):
        raise results[0]  # type: ignore[misc]
    if not quotes:
        raise TransientError("no DEX answered with a quote: " + "; ".join(repr(r) for r in results))
    unavailable = {
        dex.name: _reason(result)
        for dex, result in zip(venues, results, strict=True)
        if not isinstance(result, Quote)
    }
    return QuoteRound(quotes=quotes, unavailable=unavailable)


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no quote within the quote timeout"
    return str(error) or type(error).__name__

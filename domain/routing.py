"""Routing math: what each DEX would really give, and which one to use.

Output is the venue's own figure when it priced the exact amount on chain; otherwise it
is computed on a constant-product pool whose tokenIn reserve is the quote's `liquidity`:
`out = price * a * L / (L + a)` with `a = amount * (1 - fee)`.
So a bigger order gets a worse average price, and a deeper pool can beat a
better headline price.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, localcontext

import msgspec

from domain.events import Quote

# Outputs are kept to 12 decimal places: finer than any SPL token's decimals.
_QUANTUM = Decimal("1e-12")
# Enough digits for 12 decimals on outputs up to 1e40 (a trillion SOL in BONK is ~1e22).
_PRECISION = 60


def expected_out(quote: Quote, amount: Decimal) -> Decimal:
    """tokenOut received for `amount` tokenIn after the fee and the price impact.

    A quote that priced exactly this amount on its pool's own curve (an on-chain venue)
    already knows it; any other is estimated on a constant-product pool.
    """
    if quote.quoted_amount is not None and quote.quoted_amount == amount:
        return quote.expected_out
    if quote.liquidity <= 0:
        return Decimal(0)
    with localcontext(prec=_PRECISION):
        effective_in = amount * (1 - quote.fee)
        out = quote.price * effective_in * quote.liquidity / (quote.liquidity + effective_in)
        return out.quantize(_QUANTUM, rounding=ROUND_DOWN)


def with_expected_out(quote: Quote, amount: Decimal) -> Quote:
    return msgspec.structs.replace(quote, expected_out=expected_out(quote, amount))


def choose_best(quotes: list[Quote], amount: Decimal) -> tuple[Quote, str]:
    """The quote with the largest net output, and a one-line reason.

    Ties go to the lower fee, then to the DEX name, so the choice is deterministic.
    """
    if not quotes:
        raise ValueError("no quotes to choose from")
    ranked = sorted(quotes, key=lambda q: (-expected_out(q, amount), q.fee, q.dex))
    best = ranked[0]
    best_out = expected_out(best, amount)
    if len(ranked) == 1:
        return best, f"only {best.dex} answered: net {best_out}"
    runner_up = ranked[1]
    margin = best_out - expected_out(runner_up, amount)
    return best, (
        f"{best.dex} nets {best_out} vs {runner_up.dex} "
        f"{expected_out(runner_up, amount)} (+{margin}) after fee and price impact"
    )


def net_price(quote: Quote, amount: Decimal) -> Decimal:
    """Average tokenOut per tokenIn the order would really get."""
    return expected_out(quote, amount) / amount if amount > 0 else Decimal(0)


def minimum_out(expected: Decimal, slippage_tolerance: Decimal) -> Decimal:
    """The least output the swap may accept: `expected * (1 - slippage)`, rounded down."""
    with localcontext(prec=_PRECISION):
        return (expected * (1 - slippage_tolerance)).quantize(_QUANTUM, rounding=ROUND_DOWN)

"""Routing math: net output after fee and constant-product price impact, and the choice of DEX."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.events import Quote
from domain.routing import choose_best, expected_out, minimum_out, net_price, with_expected_out

DEEP = Decimal(10) ** 9


def quote(dex: str, price: str, fee: str = "0.003", liquidity: Decimal | str = DEEP) -> Quote:
    return Quote(dex=dex, price=Decimal(price), fee=Decimal(fee), liquidity=Decimal(liquidity))


def test_expected_out_applies_fee_then_constant_product_impact() -> None:
    # a = 10 * (1 - 0.003) = 9.97; out = 150 * 9.97 * 1000 / (1000 + 9.97)
    q = quote("raydium", "150", fee="0.003", liquidity="1000")
    exact = Decimal(150) * Decimal("9.97") * Decimal(1000) / Decimal("1009.97")
    assert expected_out(q, Decimal(10)) == exact.quantize(Decimal("1e-12"), rounding="ROUND_DOWN")
    assert expected_out(q, Decimal(10)) < Decimal(150) * Decimal("9.97")


def test_expected_out_is_zero_for_an_empty_pool() -> None:
    assert expected_out(quote("a", "150", liquidity="0"), Decimal(1)) == 0


def test_with_expected_out_fills_in_the_net_output_only() -> None:
    q = quote("raydium", "150", liquidity="1000")
    filled = with_expected_out(q, Decimal(10))
    assert filled.expected_out == expected_out(q, Decimal(10))
    assert (filled.dex, filled.price, filled.fee, filled.liquidity) == (q.dex, q.price, q.fee, q.liquidity)


def test_router_picks_the_larger_net_output() -> None:
    better, worse = quote("meteora", "151"), quote("raydium", "150")
    best, _ = choose_best([worse, better], Decimal(1))
    assert best.dex == "meteora"


def test_higher_headline_price_loses_to_a_lower_fee() -> None:
    # 100 * (1 - 0.05) = 95 < 99 * (1 - 0.003) = 98.7 per unit on deep pools.
    pricey_fee, cheap_fee = quote("raydium", "100", fee="0.05"), quote("meteora", "99", fee="0.003")
    best, reason = choose_best([pricey_fee, cheap_fee], Decimal(1))
    assert best.dex == "meteora"
    assert expected_out(cheap_fee, Decimal(1)) > expected_out(pricey_fee, Decimal(1))
    assert "meteora" in reason and "raydium" in reason


def test_higher_headline_price_loses_to_deeper_liquidity() -> None:
    # 5 units into a reserve of 10 loses a third to impact; the deep pool loses almost nothing.
    shallow, deep = quote("raydium", "101", liquidity="10"), quote("meteora", "100", liquidity="1000000")
    best, _ = choose_best([shallow, deep], Decimal(5))
    assert best.dex == "meteora"


def test_shallow_pool_still_wins_a_small_enough_order() -> None:
    # Same two pools, a tiny order: the impact vanishes and the headline price decides.
    shallow, deep = quote("raydium", "101", liquidity="10"), quote("meteora", "100", liquidity="1000000")
    best, _ = choose_best([shallow, deep], Decimal("0.001"))
    assert best.dex == "raydium"


def test_reason_states_both_net_outputs_and_the_margin() -> None:
    a, b = quote("raydium", "150"), quote("meteora", "149")
    _, reason = choose_best([a, b], Decimal(1))
    out_a, out_b = expected_out(a, Decimal(1)), expected_out(b, Decimal(1))
    assert str(out_a) in reason and str(out_b) in reason
    assert str(out_a - out_b) in reason


def test_single_quote_is_chosen_and_the_reason_says_so() -> None:
    best, reason = choose_best([quote("raydium", "150")], Decimal(1))
    assert best.dex == "raydium"
    assert "only raydium" in reason


def test_choose_best_refuses_an_empty_list() -> None:
    with pytest.raises(ValueError):
        choose_best([], Decimal(1))


def test_equal_net_output_ties_go_to_the_dex_name_whatever_the_input_order() -> None:
    a, b = quote("meteora", "150"), quote("raydium", "150")
    assert choose_best([a, b], Decimal(1))[0].dex == "meteora"
    assert choose_best([b, a], Decimal(1))[0].dex == "meteora"


def test_equal_net_output_ties_go_to_the_lower_fee_before_the_name() -> None:
    # Empty pools both net 0: the lower fee wins even though its name sorts last.
    low_fee = quote("zeta", "150", fee="0.001", liquidity="0")
    high_fee = quote("alpha", "150", fee="0.003", liquidity="0")
    assert choose_best([high_fee, low_fee], Decimal(1))[0].dex == "zeta"
    assert choose_best([low_fee, high_fee], Decimal(1))[0].dex == "zeta"


def test_choice_is_the_same_on_every_call() -> None:
    quotes = [
        quote("raydium", "150", liquidity="900"),
        quote("meteora", "149.5", fee="0.002", liquidity="700"),
    ]
    choices = {choose_best(list(order), Decimal(3)) for order in (quotes, quotes[::-1]) for _ in range(3)}
    assert len(choices) == 1


def test_minimum_out_is_expected_times_one_minus_slippage() -> None:
    assert minimum_out(Decimal("200"), Decimal("0.01")) == Decimal("198")


def test_minimum_out_rounds_down_to_twelve_places() -> None:
    # 100.000000000001 * 0.99 = 99.00000000000099: rounding to nearest would give ...001.
    result = minimum_out(Decimal("100.000000000001"), Decimal("0.01"))
    assert result == Decimal("99.000000000000")
    assert result.as_tuple().exponent == -12


def test_minimum_out_with_zero_slippage_is_the_expected_output() -> None:
    assert minimum_out(Decimal("123.456"), Decimal(0)) == Decimal("123.456")


def test_bigger_orders_get_a_worse_average_price() -> None:
    q = quote("raydium", "150", liquidity="50000")
    prices = [net_price(q, Decimal(a)) for a in ("1", "100", "10000", "1000000")]
    assert prices == sorted(prices, reverse=True)
    assert len(set(prices)) == len(prices)


def test_average_price_never_exceeds_the_price_after_fee() -> None:
    q = quote("raydium", "150", fee="0.003", liquidity="50000")
    assert net_price(q, Decimal("0.5")) <= Decimal(150) * Decimal("0.997")


def test_net_price_of_nothing_is_zero() -> None:
    assert net_price(quote("raydium", "150"), Decimal(0)) == 0


def test_huge_outputs_keep_twelve_decimals_without_overflowing_the_context() -> None:
    # SOL→BONK at 7.5e6 tokens per SOL, for 1e15 SOL: an output near 1e22.
    bonk = quote("raydium", "7500000", liquidity=Decimal("1e18"))
    out = expected_out(bonk, Decimal("1e15"))
    assert out > Decimal("1e21")
    assert out.as_tuple().exponent == -12
    assert minimum_out(out, Decimal("0.01")) < out

"""Raydium CPMM swap_base_input math against the research report's worked example and
hand-computed cases (the arithmetic is spelled out beside each expected number)."""

from __future__ import annotations

from fractions import Fraction

import msgspec
import pytest

from domain.curves.cpmm import (
    CREATOR_FEE_ON_BOTH_TOKEN,
    CREATOR_FEE_ON_ONLY_TOKEN_0,
    CREATOR_FEE_ON_ONLY_TOKEN_1,
    STATUS_SWAP_DISABLED,
    CpmmFees,
    CpmmFeesOwed,
    CpmmPool,
    price_impact,
    reserves_without_fees,
    spot_price,
    swap_base_input,
)
from domain.curves.errors import ProgramError, ProgramPanic

POOL = CpmmPool(vault_0_amount=1_000_000_000, vault_1_amount=2_000_000_000)
FEES = CpmmFees(trade_fee_rate=2500, protocol_fee_rate=120_000, fund_fee_rate=40_000)
NOW = 1_700_000_000


def out_for_ten_million_token_0(pool: CpmmPool) -> int:
    return swap_base_input(pool, FEES, 10_000_000, zero_for_one=True, unix_timestamp=NOW).amount_out


def test_report_worked_example_gives_fees_and_output_to_the_unit() -> None:
    result = swap_base_input(POOL, FEES, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    fees = (result.trade_fee, result.protocol_fee, result.fund_fee, result.creator_fee)
    assert fees == (25_000, 3_000, 1_000, 0)
    assert result.amount_out == 19_752_964
    assert (result.reserve_in, result.reserve_out) == (1_000_000_000, 2_000_000_000)


def test_protocol_and_fund_fees_accrue_on_the_input_token_counters() -> None:
    result = swap_base_input(POOL, FEES, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    assert result.fees_owed == CpmmFeesOwed(protocol_fees_token_0=3_000, fund_fees_token_0=1_000)


def test_one_for_zero_swaps_token_1_into_token_0() -> None:
    result = swap_base_input(POOL, FEES, 10_000_000, zero_for_one=False, unix_timestamp=NOW)
    # trade fee ceil(1e7 × 0.25%) = 25_000; 9_975_000 × 1e9 // (2e9 + 9_975_000) = 4_962_748
    assert result.amount_out == 4_962_748
    assert result.fees_owed == CpmmFeesOwed(protocol_fees_token_1=3_000, fund_fees_token_1=1_000)


def test_trade_fee_rounds_up_and_its_shares_round_down() -> None:
    result = swap_base_input(POOL, FEES, 1_001, zero_for_one=True, unix_timestamp=NOW)
    # 1001 × 2500 / 1e6 = 2.5025 → 3; protocol 3 × 12% = 0.36 → 0; fund 3 × 4% → 0
    assert (result.trade_fee, result.protocol_fee, result.fund_fee) == (3, 0, 0)


def test_owed_fees_are_excluded_from_the_reserves() -> None:
    owed = CpmmFeesOwed(protocol_fees_token_0=3_000, fund_fees_token_0=1_000, creator_fees_token_1=7)
    pool = CpmmPool(1_000_004_000, 2_000_000_007, owed)
    reserves = reserves_without_fees(pool.vault_0_amount, pool.vault_1_amount, owed)
    assert reserves == (1_000_000_000, 2_000_000_000)
    assert out_for_ten_million_token_0(pool) == 19_752_964


def test_owed_fees_above_the_vault_balance_fail_with_insufficient_vault() -> None:
    pool = CpmmPool(1_000, 2_000, CpmmFeesOwed(fund_fees_token_1=2_001))
    with pytest.raises(ProgramError) as failure:
        swap_base_input(pool, FEES, 10, zero_for_one=True, unix_timestamp=NOW)
    assert (failure.value.code, failure.value.name) == (6012, "InsufficientVault")


def test_creator_fee_on_input_is_one_ceil_over_both_rates_split_by_floor() -> None:
    fees = msgspec.structs.replace(FEES, creator_fee_rate=500, enable_creator_fee=True)
    result = swap_base_input(POOL, fees, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    # total ceil(1e7 × 3000 / 1e6) = 30_000; creator 30_000 × 500 // 3000 = 5_000; trade 25_000;
    # out 9_970_000 × 2e9 // (1e9 + 9_970_000) = 19_743_160
    assert (result.creator_fee, result.trade_fee, result.amount_out) == (5_000, 25_000, 19_743_160)
    assert result.creator_fee_on_input
    assert result.fees_owed.creator_fees_token_0 == 5_000


def test_creator_fee_on_output_when_only_the_output_token_collects_it() -> None:
    fees = msgspec.structs.replace(
        FEES, creator_fee_rate=500, enable_creator_fee=True, creator_fee_on=CREATOR_FEE_ON_ONLY_TOKEN_1
    )
    result = swap_base_input(POOL, fees, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    # curve out 19_752_964; creator ceil(19_752_964 × 500 / 1e6) = ceil(9876.48) = 9_877
    assert (result.creator_fee, result.amount_out) == (9_877, 19_743_087)
    assert not result.creator_fee_on_input
    assert (result.fees_owed.creator_fees_token_0, result.fees_owed.creator_fees_token_1) == (0, 9_877)


def test_only_token_0_mode_charges_a_one_for_zero_swap_on_its_output() -> None:
    fees = msgspec.structs.replace(
        FEES, creator_fee_rate=500, enable_creator_fee=True, creator_fee_on=CREATOR_FEE_ON_ONLY_TOKEN_0
    )
    result = swap_base_input(POOL, fees, 10_000_000, zero_for_one=False, unix_timestamp=NOW)
    # curve out 4_962_748 (token 0); creator ceil(4_962_748 × 500 / 1e6) = ceil(2481.37) = 2_482
    assert (result.creator_fee, result.amount_out) == (2_482, 4_960_266)
    assert result.fees_owed.creator_fees_token_0 == 2_482


def test_disabled_creator_fee_charges_nothing_whatever_the_config_rate() -> None:
    fees = msgspec.structs.replace(FEES, creator_fee_rate=500, enable_creator_fee=False)
    result = swap_base_input(POOL, fees, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    assert (result.creator_fee, result.amount_out) == (0, 19_752_964)


def test_swap_disabled_status_bit_is_not_approved() -> None:
    pool = msgspec.structs.replace(POOL, status=STATUS_SWAP_DISABLED)
    with pytest.raises(ProgramError) as failure:
        swap_base_input(pool, FEES, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    assert (failure.value.code, failure.value.name) == (6000, "NotApproved")


def test_deposit_and_withdraw_status_bits_do_not_stop_swaps() -> None:
    pool = msgspec.structs.replace(POOL, status=0b011)
    assert out_for_ten_million_token_0(pool) == 19_752_964


def test_swap_before_open_time_is_not_approved() -> None:
    pool = msgspec.structs.replace(POOL, open_time=NOW + 1)
    with pytest.raises(ProgramError) as failure:
        swap_base_input(pool, FEES, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    assert failure.value.code == 6000


def test_swap_exactly_at_open_time_is_allowed() -> None:
    pool = msgspec.structs.replace(POOL, open_time=NOW)
    assert out_for_ten_million_token_0(pool) == 19_752_964


def test_minimum_out_one_above_the_output_exceeds_slippage() -> None:
    with pytest.raises(ProgramError) as failure:
        swap_base_input(
            POOL, FEES, 10_000_000, zero_for_one=True, unix_timestamp=NOW, minimum_amount_out=19_752_965
        )
    assert (failure.value.code, failure.value.name) == (6005, "ExceededSlippage")
    assert str(failure.value) == "ExceededSlippage (6005): Exceeds desired slippage limit"


def test_minimum_out_equal_to_the_output_passes() -> None:
    result = swap_base_input(
        POOL, FEES, 10_000_000, zero_for_one=True, unix_timestamp=NOW, minimum_amount_out=19_752_964
    )
    assert result.amount_out == 19_752_964


def test_zero_fee_rates_with_creator_fee_on_input_give_zero_trading_tokens() -> None:
    # trade + creator = 0 is the denominator of the creator split: the program's Option is None.
    with pytest.raises(ProgramError) as failure:
        swap_base_input(POOL, CpmmFees(trade_fee_rate=0), 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    assert (failure.value.code, failure.value.name) == (6006, "ZeroTradingTokens")


def test_zero_amount_in_fails_the_require_gt() -> None:
    with pytest.raises(ProgramError) as failure:
        swap_base_input(POOL, FEES, 0, zero_for_one=True, unix_timestamp=NOW)
    assert (failure.value.code, failure.value.name) == (2505, "RequireGtViolated")


def test_an_amount_that_buys_nothing_fails_the_require_gt_on_the_output() -> None:
    # 1 unit: the trade fee ceil(0.0025) = 1 takes it all, the curve gives 0.
    with pytest.raises(ProgramError) as failure:
        swap_base_input(POOL, FEES, 1, zero_for_one=True, unix_timestamp=NOW)
    assert failure.value.code == 2505


def test_creator_fee_mode_above_two_is_an_invalid_fee_model() -> None:
    fees = msgspec.structs.replace(FEES, creator_fee_on=3)
    with pytest.raises(ProgramError) as failure:
        swap_base_input(POOL, fees, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    assert (failure.value.code, failure.value.name) == (6013, "InvalidFeeModel")


def test_an_empty_reserve_panics_like_the_program() -> None:
    with pytest.raises(ProgramPanic):
        swap_base_input(CpmmPool(0, 2_000), FEES, 10, zero_for_one=False, unix_timestamp=NOW)


def test_both_token_mode_charges_the_creator_fee_on_input_in_either_direction() -> None:
    fees = msgspec.structs.replace(
        FEES, creator_fee_rate=500, enable_creator_fee=True, creator_fee_on=CREATOR_FEE_ON_BOTH_TOKEN
    )
    result = swap_base_input(POOL, fees, 10_000_000, zero_for_one=False, unix_timestamp=NOW)
    assert result.creator_fee_on_input
    assert result.fees_owed.creator_fees_token_1 == 5_000


def test_spot_price_is_output_reserve_over_input_reserve() -> None:
    assert spot_price(POOL, zero_for_one=True) == 2
    assert spot_price(POOL, zero_for_one=False) == Fraction(1, 2)


def test_price_impact_compares_the_curve_rate_with_spot() -> None:
    result = swap_base_input(POOL, FEES, 10_000_000, zero_for_one=True, unix_timestamp=NOW)
    # curve in 9_975_000, curve out 19_752_964, spot 2
    assert price_impact(result) == 1 - Fraction(19_752_964, 9_975_000 * 2)

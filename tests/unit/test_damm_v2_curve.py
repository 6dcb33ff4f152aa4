"""Meteora DAMM v2 exact-input swap math against the research report's worked example and
hand-computed cases (the arithmetic is spelled out beside each expected number)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import msgspec
import pytest

from domain.curves.damm_v2 import (
    ACTIVATION_BY_TIMESTAMP,
    COLLECT_FEE_COMPOUNDING,
    COLLECT_FEE_ONLY_B,
    DammV2Pool,
    DammV2SwapResult,
    pool_from_reserves,
    price_impact,
    reserves_from_curve,
    spot_price,
    swap_exact_in,
)
from domain.curves.damm_v2_fees import (
    BASE_FEE_TIME_EXPONENTIAL,
    ONE_Q64,
    DammV2Fees,
    DynamicFee,
    MarketCapSchedulerFee,
    RateLimiterFee,
    TimeSchedulerFee,
    UnknownBaseFee,
    fee_numerator,
    pow_q64,
    scheduler_fee_numerator,
)
from domain.curves.errors import ProgramError, UnsupportedPool

S = 7_144_393_260_748_141_011
L = 7_144_393_261_392_398_213_787_312_892_591_812
POOL = pool_from_reserves(10**15, 15 * 10**13)
FEES = DammV2Fees(TimeSchedulerFee(cliff_fee_numerator=2_500_000))
NOW = 1_700_000_000


def swap(
    pool: DammV2Pool = POOL,
    fees: DammV2Fees = FEES,
    amount_in: int = 10**9,
    a_to_b: bool = True,
    slot: int = 1,
    minimum_amount_out: int = 0,
    payer_is_whitelisted_vault: bool = False,
) -> DammV2SwapResult:
    return swap_exact_in(
        pool,
        fees,
        amount_in,
        a_to_b,
        slot=slot,
        unix_timestamp=NOW,
        minimum_amount_out=minimum_amount_out,
        payer_is_whitelisted_vault=payer_is_whitelisted_vault,
    )


def refused(**kwargs: Any) -> ProgramError:
    """The ProgramError `swap(**kwargs)` fails with."""
    with pytest.raises(ProgramError) as failure:
        swap(**kwargs)
    return failure.value


# ---- the worked example --------------------------------------------------------------------------------


def test_pool_from_reserves_gives_the_reports_sqrt_price_and_liquidity() -> None:
    assert (POOL.sqrt_price, POOL.liquidity) == (S, L)


def test_pool_from_reserves_stores_reserves_recomputed_exactly() -> None:
    assert (POOL.token_a_amount, POOL.token_b_amount) == (10**15, 15 * 10**13)
    assert reserves_from_curve(POOL) == (10**15, 15 * 10**13)


def test_report_worked_example_swaps_a_for_b_with_the_fee_on_the_output() -> None:
    result = swap_exact_in(POOL, FEES, 10**9, True, slot=1, unix_timestamp=NOW)
    assert (result.gross_amount_out, result.fee, result.amount_out) == (149_999_850, 375_000, 149_624_850)
    assert not result.fees_on_input and not result.fees_on_token_a


def test_a_to_b_moves_reserves_by_the_input_and_the_gross_output() -> None:
    result = swap_exact_in(POOL, FEES, 10**9, True, slot=1, unix_timestamp=NOW)
    assert (result.token_a_amount, result.token_b_amount) == (10**15 + 10**9, 15 * 10**13 - 149_999_850)
    # next price ceil(L·s / (L + 1e9·s)), below s
    assert result.next_sqrt_price == -(-(L * S) // (L + 10**9 * S))


def test_claiming_fee_per_liquidity_is_the_fee_shifted_by_128_over_liquidity() -> None:
    result = swap_exact_in(POOL, FEES, 10**9, True, slot=1, unix_timestamp=NOW)
    assert result.claiming_fee == 375_000
    assert result.fee_per_liquidity_delta == (375_000 << 128) // L


# ---- fee split ------------------------------------------------------------------------------------------


def test_protocol_share_is_taken_from_the_fee_and_referral_from_the_protocol_share() -> None:
    fees = msgspec.structs.replace(FEES, protocol_fee_percent=20, referral_fee_percent=20)
    result = swap_exact_in(POOL, fees, 10**9, True, slot=1, unix_timestamp=NOW, has_referral=True)
    # fee 375_000: protocol 75_000, of which referral 15_000; LP 300_000
    assert (result.protocol_fee, result.referral_fee, result.claiming_fee) == (60_000, 15_000, 300_000)
    assert result.gross_amount_out == result.amount_out + 375_000


def test_without_referral_the_whole_protocol_share_stays_protocol() -> None:
    fees = msgspec.structs.replace(FEES, protocol_fee_percent=20, referral_fee_percent=20)
    result = swap_exact_in(POOL, fees, 10**9, True, slot=1, unix_timestamp=NOW)
    assert (result.protocol_fee, result.referral_fee) == (75_000, 0)


# ---- collect fee modes and directions -------------------------------------------------------------------


def test_both_token_b_to_a_takes_the_fee_in_token_a_from_the_output() -> None:
    result = swap_exact_in(POOL, FEES, 10**8, False, slot=1, unix_timestamp=NOW)
    # s' = s + (1e8 << 128) // L; out = L (s' − s) // (s s') = 666_666_221; fee ceil(0.25%) = 1_666_666
    assert (result.gross_amount_out, result.fee, result.amount_out) == (666_666_221, 1_666_666, 664_999_555)
    assert result.fees_on_token_a and not result.fees_on_input
    assert result.next_sqrt_price == 7_144_398_023_676_978_646


def test_only_b_b_to_a_takes_the_fee_from_the_input() -> None:
    pool = msgspec.structs.replace(POOL, collect_fee_mode=COLLECT_FEE_ONLY_B)
    result = swap_exact_in(pool, FEES, 10**8, False, slot=1, unix_timestamp=NOW)
    # fee ceil(1e8 × 0.25%) = 250_000; the curve takes 99_750_000 B and gives 664_999_557 A
    assert (result.fee, result.curve_amount_in, result.amount_out) == (250_000, 99_750_000, 664_999_557)
    assert result.fees_on_input and not result.fees_on_token_a
    assert result.gross_amount_out == result.amount_out
    assert result.token_b_amount == 15 * 10**13 + 99_750_000


def test_only_b_a_to_b_takes_the_fee_from_the_b_output() -> None:
    pool = msgspec.structs.replace(POOL, collect_fee_mode=COLLECT_FEE_ONLY_B)
    result = swap_exact_in(pool, FEES, 10**9, True, slot=1, unix_timestamp=NOW)
    assert (result.fee, result.amount_out) == (375_000, 149_624_850)
    assert not result.fees_on_input and not result.fees_on_token_a


def test_compounding_pool_prices_on_reserves_and_keeps_its_compounding_share_in_b() -> None:
    pool = DammV2Pool(
        sqrt_price=0,
        liquidity=10**20,
        sqrt_min_price=0,
        sqrt_max_price=(1 << 128) - 1,
        collect_fee_mode=COLLECT_FEE_COMPOUNDING,
        token_a_amount=10**12,
        token_b_amount=2 * 10**12,
    )
    fees = msgspec.structs.replace(FEES, protocol_fee_percent=20, compounding_fee_bps=5_000)
    result = swap_exact_in(pool, fees, 10**9, True, slot=1, unix_timestamp=NOW)
    # out 2e12 × 1e9 // (1e12 + 1e9) = 1_998_001_998; fee ceil(0.25%) = 4_995_005: protocol 999_001,
    # then 3_996_004 split half compounding, half claiming
    assert (result.gross_amount_out, result.fee) == (1_998_001_998, 4_995_005)
    split = (result.protocol_fee, result.compounding_fee, result.claiming_fee)
    assert split == (999_001, 1_998_002, 1_998_002)
    assert result.amount_out == 1_993_006_993
    assert (result.token_a_amount, result.token_b_amount) == (1_001_000_000_000, 1_998_003_996_004)
    assert result.next_sqrt_price == 26_061_587_107_372_782_110  # isqrt((b << 128) // a)


# ---- access ---------------------------------------------------------------------------------------------


def test_disabled_pool_refuses_swaps_with_pool_disabled() -> None:
    error = refused(pool=msgspec.structs.replace(POOL, pool_status=1))
    assert (error.code, error.name) == (6003, "PoolDisabled")


def test_swap_before_the_activation_slot_is_pool_disabled() -> None:
    pool = msgspec.structs.replace(POOL, activation_point=10_000)
    assert refused(pool=pool, slot=9_999).code == 6003
    assert swap(pool=pool, slot=10_000).amount_out == 149_624_850


def test_whitelisted_vault_may_swap_one_buffer_before_activation() -> None:
    pool = msgspec.structs.replace(POOL, activation_point=10_000)
    assert swap(pool=pool, slot=1_000, payer_is_whitelisted_vault=True).amount_out > 0
    assert refused(pool=pool, slot=999, payer_is_whitelisted_vault=True).code == 6003


def test_timestamp_activated_pool_reads_the_clock_not_the_slot() -> None:
    pool = msgspec.structs.replace(POOL, activation_type=ACTIVATION_BY_TIMESTAMP, activation_point=NOW + 1)
    assert refused(pool=pool, slot=10**9).code == 6003
    pool = msgspec.structs.replace(pool, activation_point=NOW)
    assert swap(pool=pool, slot=0).amount_out == 149_624_850


def test_unknown_activation_type_is_invalid_activation_type() -> None:
    assert refused(pool=msgspec.structs.replace(POOL, activation_type=2)).code == 6010


# ---- failures -------------------------------------------------------------------------------------------


def test_zero_amount_is_amount_is_zero() -> None:
    assert refused(amount_in=0).code == 6006


def test_minimum_out_one_above_the_net_output_exceeds_slippage() -> None:
    error = refused(minimum_amount_out=149_624_851)
    assert (error.code, error.name) == (6002, "ExceededSlippage")
    assert swap(minimum_amount_out=149_624_850).amount_out == 149_624_850


def test_selling_a_past_the_minimum_sqrt_price_is_a_price_range_violation() -> None:
    pool = msgspec.structs.replace(POOL, sqrt_min_price=S - 10**12)
    assert swap(pool=pool, amount_in=10**6).amount_out > 0
    error = refused(pool=pool, amount_in=10**9)  # moves s by about 7.1e12
    assert (error.code, error.name) == (6015, "PriceRangeViolation")


def test_buying_a_past_the_maximum_sqrt_price_is_a_price_range_violation() -> None:
    pool = msgspec.structs.replace(POOL, sqrt_max_price=S + 10**9)
    assert refused(pool=pool, amount_in=10**8, a_to_b=False).code == 6015


def test_tracked_reserves_that_cannot_cover_the_output_overflow() -> None:
    pool = msgspec.structs.replace(POOL, token_a_amount=0, token_b_amount=0)
    assert refused(pool=pool).code == 6000


def test_layout_version_zero_recomputes_the_reserves_from_the_curve_first() -> None:
    pool = msgspec.structs.replace(POOL, token_a_amount=0, token_b_amount=0, layout_version=0)
    result = swap(pool=pool)
    assert (result.token_a_amount, result.token_b_amount) == (10**15 + 10**9, 15 * 10**13 - 149_999_850)


def test_unknown_fee_version_is_invalid_pool_version() -> None:
    assert refused(pool=msgspec.structs.replace(POOL, fee_version=2)).code == 6052


def test_fee_is_capped_by_the_fee_version() -> None:
    fees = DammV2Fees(TimeSchedulerFee(cliff_fee_numerator=600_000_000))
    assert fee_numerator(fees, fee_version=0, current_point=0, activation_point=0, a_to_b=True) == 500_000_000
    assert fee_numerator(fees, fee_version=1, current_point=0, activation_point=0, a_to_b=True) == 600_000_000


# ---- base fee schedules ---------------------------------------------------------------------------------

EXPONENTIAL = TimeSchedulerFee(
    cliff_fee_numerator=500_000_000,
    number_of_period=120,
    period_frequency=60,
    reduction_factor=265,
    base_fee_mode=BASE_FEE_TIME_EXPONENTIAL,
)
BASE = ONE_Q64 - (265 << 64) // 10_000  # 1 − 2.65% in Q64


def test_exponential_scheduler_first_period_is_cliff_times_the_base() -> None:
    assert scheduler_fee_numerator(EXPONENTIAL, 0, 0) == 500_000_000
    assert scheduler_fee_numerator(EXPONENTIAL, 60, 0) == (BASE * 500_000_000) >> 64 == 486_750_000


def test_exponential_scheduler_squares_and_truncates_in_q64() -> None:
    squared = (BASE * BASE) >> 64
    assert scheduler_fee_numerator(EXPONENTIAL, 120, 0) == (squared * 500_000_000) >> 64 == 473_851_125
    # period 3 = bit 0 (base) times bit 1 (squared), truncated after each product
    assert scheduler_fee_numerator(EXPONENTIAL, 180, 0) == (((BASE * squared) >> 64) * 500_000_000) >> 64
    assert scheduler_fee_numerator(EXPONENTIAL, 180, 0) == 461_294_070


def test_exponential_scheduler_stops_decaying_after_its_last_period() -> None:
    last = scheduler_fee_numerator(EXPONENTIAL, 120 * 60, 0)
    assert scheduler_fee_numerator(EXPONENTIAL, 10**9, 0) == last
    # Every product truncates, so the Q64 result sits just below the exact decay (by under 2 units).
    assert 0 < 500_000_000 * 0.9735**120 - last < 2
    assert scheduler_fee_numerator(EXPONENTIAL, 5, 100) == last  # before activation: the last period's fee


def test_pow_q64_of_a_base_above_one_inverts_and_back() -> None:
    # 1.0 is inverted to (2^128 − 1) // 2^64 = 2^64 − 1; its truncated powers give 2^64 − 5 for
    # the exponent 5 (bits 0 and 2), inverted back to 2^64 + 5: not exactly one.
    assert pow_q64(ONE_Q64, 5) == ONE_Q64 + 5
    assert pow_q64(2 * ONE_Q64, 0) == ONE_Q64


def test_linear_scheduler_subtracts_the_reduction_per_period() -> None:
    linear = TimeSchedulerFee(
        cliff_fee_numerator=100_000_000, number_of_period=10, period_frequency=10, reduction_factor=1_000_000
    )
    assert scheduler_fee_numerator(linear, 35, 0) == 97_000_000
    assert scheduler_fee_numerator(linear, 10_000, 0) == 90_000_000


def test_scheduler_fee_is_used_at_the_swap_point() -> None:
    fees = DammV2Fees(EXPONENTIAL)
    assert swap(fees=fees, slot=60).fee_numerator == 486_750_000


def test_rate_limiter_in_its_window_on_a_b_to_a_swap_is_unsupported() -> None:
    fees = DammV2Fees(
        RateLimiterFee(
            2_500_000,
            fee_increment_bps=10,
            max_limiter_duration=100,
            max_fee_bps=5_000,
            reference_amount=10**9,
        )
    )
    with pytest.raises(UnsupportedPool):
        swap(fees=fees, a_to_b=False, amount_in=10**8, slot=50)


def test_rate_limiter_that_cannot_apply_is_the_cliff_fee() -> None:
    fees = DammV2Fees(
        RateLimiterFee(
            2_500_000,
            fee_increment_bps=10,
            max_limiter_duration=100,
            max_fee_bps=5_000,
            reference_amount=10**9,
        )
    )
    assert swap(fees=fees, a_to_b=True, slot=50).amount_out == 149_624_850
    after_window = swap(fees=fees, a_to_b=False, amount_in=10**8, slot=101)
    assert after_window.amount_out == 664_999_555


def test_market_cap_scheduler_is_unsupported() -> None:
    with pytest.raises(UnsupportedPool):
        swap(fees=DammV2Fees(MarketCapSchedulerFee(2_500_000, base_fee_mode=3)))


def test_unknown_base_fee_mode_is_invalid_base_fee_mode() -> None:
    assert refused(fees=DammV2Fees(UnknownBaseFee(2_500_000, base_fee_mode=7))).code == 6047


# ---- dynamic fee ----------------------------------------------------------------------------------------

DYNAMIC = DynamicFee(
    initialized=1,
    max_volatility_accumulator=14_460_000,
    variable_fee_control=1_913,
    bin_step=1,
    filter_period=10,
    decay_period=120,
    reduction_factor=5_000,
    last_update_timestamp=NOW - 5,
    bin_step_u128=1_844_674_407_370_955,
    sqrt_price_reference=S,
    volatility_accumulator=100_000,
)


def test_dynamic_fee_adds_the_rounded_up_variable_fee_of_the_stored_accumulator() -> None:
    fees = msgspec.structs.replace(FEES, dynamic_fee=DYNAMIC)
    # (100_000 × 1)² × 1913 = 1.913e13 → ceil(/1e11) = 192
    assert swap(fees=fees).fee_numerator == 2_500_000 + 192


def test_dynamic_fee_accumulates_the_bins_crossed_from_the_reference() -> None:
    fees = msgspec.structs.replace(FEES, dynamic_fee=DYNAMIC)
    result = swap(fees=fees, amount_in=10**12)
    # s → 7_137_256_004_744_040_585: ((s << 64) // s' − 2^64) // bin_step_u128 × 2 = 18 bins
    assert result.dynamic_fee.volatility_accumulator == 180_000
    assert result.dynamic_fee.last_update_timestamp == NOW


def test_dynamic_fee_after_the_filter_period_moves_the_reference_and_decays_volatility() -> None:
    fees = msgspec.structs.replace(
        FEES,
        dynamic_fee=msgspec.structs.replace(
            DYNAMIC, last_update_timestamp=NOW - 60, sqrt_price_reference=S + 10**15
        ),
    )
    result = swap(fees=fees, amount_in=10**12)
    # reference := s; volatility_reference := 100_000 × 5000 / 10_000 = 50_000; + 18 bins
    assert result.dynamic_fee.sqrt_price_reference == S
    assert result.dynamic_fee.volatility_reference == 50_000
    assert result.dynamic_fee.volatility_accumulator == 230_000


def test_small_swap_within_a_bin_leaves_the_update_time() -> None:
    fees = msgspec.structs.replace(FEES, dynamic_fee=DYNAMIC)
    result = swap(fees=fees, amount_in=10**9)
    assert result.dynamic_fee.last_update_timestamp == NOW - 5


# ---- prices ---------------------------------------------------------------------------------------------


def test_spot_price_is_sqrt_price_squared_over_two_to_the_128() -> None:
    assert spot_price(POOL, a_to_b=True) == Fraction(S * S, 1 << 128)
    assert spot_price(POOL, a_to_b=False) == Fraction(1 << 128, S * S)
    assert abs(float(spot_price(POOL, a_to_b=True)) - 0.15) < 1e-9


def test_price_impact_of_a_small_swap_is_about_its_share_of_the_reserve() -> None:
    result = swap_exact_in(POOL, FEES, 10**9, True, slot=1, unix_timestamp=NOW)
    assert abs(float(price_impact(POOL, result)) - 1e-6) < 1e-8

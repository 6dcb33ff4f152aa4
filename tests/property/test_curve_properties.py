"""Properties of the pool programs' swap math over random pools and amounts.

Both curves: the output stays below the output reserve, grows (weakly) with the
input, and a positive fee rate on a positive amount charges a positive fee. CPMM:
the pool's constant product never decreases. DAMM v2: a pool built from reserves
holds those reserves (rounded up from its curve, never above what was asked).
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.curves.cpmm import CpmmFees, CpmmPool, reserves_without_fees, swap_base_input
from domain.curves.damm_v2 import COLLECT_FEE_ONLY_B, pool_from_reserves, reserves_from_curve, swap_exact_in
from domain.curves.damm_v2_fees import DammV2Fees, TimeSchedulerFee
from domain.curves.errors import ProgramError

EXAMPLES = settings(max_examples=150, deadline=None)

reserve = st.integers(min_value=10**6, max_value=10**18)
trade_rate = st.integers(min_value=1, max_value=100_000)  # up to 10%
fee_numerator = st.integers(min_value=100_000, max_value=100_000_000)  # 0.01% .. 10%

# (pool, fees, amount in, zero_for_one) and (reserve A, reserve B, fees, amount in, a_to_b, collect_fee_mode)
CpmmCase = tuple[CpmmPool, CpmmFees, int, bool]
DammCase = tuple[int, int, DammV2Fees, int, bool, int]


@st.composite
def cpmm_swaps(draw: st.DrawFn) -> CpmmCase:
    pool = CpmmPool(draw(reserve), draw(reserve))
    fees = CpmmFees(
        trade_fee_rate=draw(trade_rate),
        protocol_fee_rate=draw(st.integers(0, 500_000)),
        fund_fee_rate=draw(st.integers(0, 500_000)),
        creator_fee_rate=draw(st.integers(0, 10_000)),
        creator_fee_on=draw(st.integers(0, 2)),
        enable_creator_fee=draw(st.booleans()),
    )
    zero_for_one = draw(st.booleans())
    reserve_in = pool.vault_0_amount if zero_for_one else pool.vault_1_amount
    amount = draw(st.integers(min_value=1, max_value=10 * reserve_in))
    return pool, fees, amount, zero_for_one


def cpmm_out(pool: CpmmPool, fees: CpmmFees, amount: int, zero_for_one: bool) -> int:
    """The output, 0 where the program refuses a swap that buys nothing (RequireGtViolated)."""
    try:
        return swap_base_input(pool, fees, amount, zero_for_one=zero_for_one, unix_timestamp=0).amount_out
    except ProgramError as error:
        assert error.code == 2505
        return 0


@EXAMPLES
@given(cpmm_swaps())
def test_cpmm_output_stays_below_the_output_reserve(case: CpmmCase) -> None:
    pool, fees, amount, zero_for_one = case
    reserve_out = pool.vault_1_amount if zero_for_one else pool.vault_0_amount
    assert cpmm_out(pool, fees, amount, zero_for_one) < reserve_out


@EXAMPLES
@given(cpmm_swaps(), st.integers(min_value=1, max_value=10**12))
def test_cpmm_output_never_falls_as_the_input_grows(case: CpmmCase, extra: int) -> None:
    pool, fees, amount, zero_for_one = case
    assert cpmm_out(pool, fees, amount + extra, zero_for_one) >= cpmm_out(pool, fees, amount, zero_for_one)


@EXAMPLES
@given(cpmm_swaps())
def test_cpmm_positive_trade_rate_charges_a_positive_fee(case: CpmmCase) -> None:
    pool, fees, amount, zero_for_one = case
    try:
        result = swap_base_input(pool, fees, amount, zero_for_one=zero_for_one, unix_timestamp=0)
    except ProgramError:
        return  # nothing bought: no fee to look at
    assert result.trade_fee > 0


@EXAMPLES
@given(cpmm_swaps())
def test_cpmm_constant_product_of_the_reserves_never_decreases(case: CpmmCase) -> None:
    pool, fees, amount, zero_for_one = case
    try:
        result = swap_base_input(pool, fees, amount, zero_for_one=zero_for_one, unix_timestamp=0)
    except ProgramError:
        return
    # The vaults after the transfers, less the fees they now owe: the next swap's reserves.
    vault_0 = pool.vault_0_amount + (amount if zero_for_one else -result.amount_out)
    vault_1 = pool.vault_1_amount + (-result.amount_out if zero_for_one else amount)
    before = reserves_without_fees(pool.vault_0_amount, pool.vault_1_amount, pool.fees_owed)
    after = reserves_without_fees(vault_0, vault_1, result.fees_owed)
    assert after[0] * after[1] >= before[0] * before[1]


@st.composite
def damm_swaps(draw: st.DrawFn) -> DammCase:
    token_a, token_b = draw(reserve), draw(reserve)
    fees = DammV2Fees(TimeSchedulerFee(draw(fee_numerator)), protocol_fee_percent=draw(st.integers(0, 100)))
    a_to_b = draw(st.booleans())
    amount = draw(st.integers(min_value=1, max_value=10 * (token_a if a_to_b else token_b)))
    return token_a, token_b, fees, amount, a_to_b, draw(st.integers(0, 1))


def damm_gross_out(token_a: int, token_b: int, fees: DammV2Fees, amount: int, a_to_b: bool, mode: int) -> int:
    pool = msgspec.structs.replace(pool_from_reserves(token_a, token_b), collect_fee_mode=mode)
    return swap_exact_in(pool, fees, amount, a_to_b, slot=0, unix_timestamp=0).gross_amount_out


@EXAMPLES
@given(damm_swaps())
def test_damm_v2_output_stays_below_the_output_reserve(case: DammCase) -> None:
    token_a, token_b, _, _, a_to_b, _ = case
    pool = pool_from_reserves(token_a, token_b)
    reserve_out = pool.token_b_amount if a_to_b else pool.token_a_amount
    assert damm_gross_out(*case) < reserve_out


@EXAMPLES
@given(damm_swaps(), st.integers(min_value=1, max_value=10**12))
def test_damm_v2_output_never_falls_as_the_input_grows(case: DammCase, extra: int) -> None:
    token_a, token_b, fees, amount, a_to_b, mode = case
    bigger = damm_gross_out(token_a, token_b, fees, amount + extra, a_to_b, mode)
    assert bigger >= damm_gross_out(*case)


@EXAMPLES
@given(damm_swaps())
def test_damm_v2_positive_fee_rate_charges_a_positive_fee(case: DammCase) -> None:
    token_a, token_b, fees, amount, a_to_b, mode = case
    pool = msgspec.structs.replace(pool_from_reserves(token_a, token_b), collect_fee_mode=mode)
    result = swap_exact_in(pool, fees, amount, a_to_b, slot=0, unix_timestamp=0)
    # The fee rounds up, so any amount it is taken from pays at least one unit; a fee on the output
    # has nothing to charge when the curve gives nothing.
    assert result.fee > 0 or (not result.fees_on_input and result.gross_amount_out == 0)
    shares = result.protocol_fee + result.referral_fee + result.claiming_fee + result.compounding_fee
    assert result.fee == shares


@EXAMPLES
@given(reserve, reserve)
def test_damm_v2_pool_from_reserves_holds_what_was_asked(token_a: int, token_b: int) -> None:
    pool = pool_from_reserves(token_a, token_b)
    assert reserves_from_curve(pool) == (pool.token_a_amount, pool.token_b_amount)
    assert pool.token_a_amount <= token_a and pool.token_b_amount <= token_b
    # and not much less: within a billionth of each
    assert token_a - pool.token_a_amount <= token_a // 10**9
    assert token_b - pool.token_b_amount <= token_b // 10**9


@EXAMPLES
@given(damm_swaps())
def test_damm_v2_only_b_pools_never_charge_fees_in_a(case: DammCase) -> None:
    token_a, token_b, fees, amount, a_to_b, _ = case
    pool = msgspec.structs.replace(pool_from_reserves(token_a, token_b), collect_fee_mode=COLLECT_FEE_ONLY_B)
    assert not swap_exact_in(pool, fees, amount, a_to_b, slot=0, unix_timestamp=0).fees_on_token_a

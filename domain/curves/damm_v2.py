"""Meteora DAMM v2 (cp-amm) exact-input swap, bit for bit.

The program's `swap` (and `swap2` in ExactIn mode) as its pinocchio fast path runs
it (release 0.2.1): the access check, the lazy reserve migration of old pools, the
fee numerator (base fee + dynamic fee, capped), the fee taken from the input or the
output per `collect_fee_mode`, the curve step (concentrated liquidity over
`sqrt_price`/`liquidity` for modes 0 and 1, constant product over the stored
reserves for mode 2) and the state it writes back. Python ints stand in for the
program's u64/u128/U256; where its checked arithmetic fails we raise the error it
returns (MathOverflow 6000, TypeCastFailed 6007, …).

Prices are Q64.64 `sqrt(B/A)`; `liquidity` is the real L times 2^64.

The fee itself (base fee schedules, dynamic fee, the split into shares) is computed in
`domain.curves.damm_v2_fees`, which says which fees are priced; Token-2022 transfer
fees are not (the caller checks the mints).
"""

from __future__ import annotations

import math
from fractions import Fraction

import msgspec

from domain.curves.damm_v2_fees import (
    DammV2Fees,
    DynamicFee,
    RateLimiterFee,
    dynamic_fee_after_swap,
    dynamic_fee_before_swap,
    fee_numerator,
    fee_on_amount,
    rate_limiter_applies,
)
from domain.curves.errors import METEORA_DAMM_V2_ERRORS, ProgramError, ProgramPanic, UnsupportedPool
from domain.curves.integers import U64_MAX, U128_MAX

MIN_SQRT_PRICE = 4_295_048_016
MAX_SQRT_PRICE = 79_226_673_521_066_979_257_578_248_091
# How long before activation the pool's whitelisted (alpha) vault may already swap.
SLOT_BUFFER = 9_000
TIME_BUFFER = 3_600

COLLECT_FEE_BOTH_TOKEN = 0
COLLECT_FEE_ONLY_B = 1
COLLECT_FEE_COMPOUNDING = 2
ACTIVATION_BY_SLOT = 0
ACTIVATION_BY_TIMESTAMP = 1
POOL_STATUS_ENABLED = 0


def _error(name: str) -> ProgramError:
    return METEORA_DAMM_V2_ERRORS.error(name)


# ---- pool state and swap result --------------------------------------------------------------------------


class DammV2Pool(msgspec.Struct, frozen=True):
    """The Pool fields a swap reads (and the curve fields it writes)."""

    sqrt_price: int
    liquidity: int
    sqrt_min_price: int = MIN_SQRT_PRICE
    sqrt_max_price: int = MAX_SQRT_PRICE
    collect_fee_mode: int = COLLECT_FEE_BOTH_TOKEN
    token_a_amount: int = 0
    token_b_amount: int = 0
    # 0: the reserves above are not tracked yet (pools made before 0.2.0); the first swap
    # recomputes them from the curve and sets 1.
    layout_version: int = 1
    activation_point: int = 0
    activation_type: int = ACTIVATION_BY_SLOT
    pool_status: int = POOL_STATUS_ENABLED
    fee_version: int = 0


class DammV2SwapResult(msgspec.Struct, frozen=True):
    """One exact-input swap: what moves, the fee and its split, and the pool's new state.

    `amount_in` goes from the user to the input vault and `amount_out` to the user;
    `referral_fee` goes from the fee token's vault to the referral account.
    `curve_amount_in` is what the input reserve grows by (the input less any fee taken
    from it) and `gross_amount_out` what the output reserve shrinks by. The fee is in
    token A when `fees_on_token_a`, else in token B. An emulator applies the rest:
    `protocol_{a|b}_fee += protocol_fee`, `fee_{a|b}_per_liquidity += fee_per_liquidity_delta`,
    metrics `total_lp_{a|b}_fee += claiming_fee + compounding_fee` and
    `total_protocol_{a|b}_fee += protocol_fee`, then writes `next_sqrt_price`,
    `token_a_amount`, `token_b_amount`, `dynamic_fee` and `layout_version = 1`.
    """

    a_to_b: bool
    amount_in: int
    curve_amount_in: int
    amount_out: int
    gross_amount_out: int
    fee_numerator: int
    fee: int
    protocol_fee: int
    referral_fee: int
    claiming_fee: int
    compounding_fee: int
    fees_on_input: bool
    fees_on_token_a: bool
    next_sqrt_price: int
    token_a_amount: int
    token_b_amount: int
    fee_per_liquidity_delta: int
    dynamic_fee: DynamicFee


# ---- curve -----------------------------------------------------------------------------------------------


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def delta_amount_a(lower: int, upper: int, liquidity: int, round_up: bool) -> int:
    """Token A between two sqrt prices: `L × (upper − lower) / (lower × upper)`; MathOverflow past u64."""
    denominator = lower * upper
    if denominator == 0:
        raise ProgramPanic("zero sqrt price in delta_amount_a")
    numerator = liquidity * (upper - lower)
    amount = _ceil_div(numerator, denominator) if round_up else numerator // denominator
    if amount > U64_MAX:
        raise _error("MathOverflow")
    return amount


def delta_amount_b(lower: int, upper: int, liquidity: int, round_up: bool) -> int:
    """Token B between two sqrt prices: `L × (upper − lower) / 2^128`; MathOverflow past u64."""
    if upper < lower:
        raise _error("MathOverflow")
    product = liquidity * (upper - lower)
    amount = _ceil_div(product, 1 << 128) if round_up else product >> 128
    if amount > U64_MAX:
        raise _error("MathOverflow")
    return amount


def reserves_from_curve(pool: DammV2Pool) -> tuple[int, int]:
    """The reserves a concentrated pool holds by its curve, rounded up (what a layout-0 pool is given).

    A compounding pool's reserves are its stored amounts.
    """
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        return pool.token_a_amount, pool.token_b_amount
    return (
        delta_amount_a(pool.sqrt_price, pool.sqrt_max_price, pool.liquidity, True),
        delta_amount_b(pool.sqrt_min_price, pool.sqrt_price, pool.liquidity, True),
    )


def _concentrated_step(pool: DammV2Pool, amount: int, a_to_b: bool) -> tuple[int, int]:
    """(output, next sqrt price) of the concentrated-liquidity curve for `amount` in."""
    sqrt_price, liquidity = pool.sqrt_price, pool.liquidity
    if sqrt_price <= 0 or liquidity <= 0:
        raise ProgramPanic("assert failed: sqrt_price > 0 and liquidity > 0")
    if a_to_b:
        # The next price rounds up so that the pool never gives away more B than it should.
        next_price = (
            sqrt_price if amount == 0 else _ceil_div(liquidity * sqrt_price, liquidity + amount * sqrt_price)
        )
        if next_price > U128_MAX:
            raise _error("TypeCastFailed")
        if next_price < pool.sqrt_min_price:
            raise _error("PriceRangeViolation")
        return delta_amount_b(next_price, sqrt_price, liquidity, False), next_price
    next_price = sqrt_price if amount == 0 else sqrt_price + (amount << 128) // liquidity
    if next_price > U128_MAX:
        raise _error("TypeCastFailed")
    if next_price > pool.sqrt_max_price:
        raise _error("PriceRangeViolation")
    return delta_amount_a(sqrt_price, next_price, liquidity, False), next_price


def _compounding_step(pool: DammV2Pool, amount: int, a_to_b: bool) -> int:
    """Output of the constant-product curve over the stored reserves (compounding pools)."""
    reserve_in, reserve_out = (
        (pool.token_a_amount, pool.token_b_amount) if a_to_b else (pool.token_b_amount, pool.token_a_amount)
    )
    denominator = reserve_in + amount
    if denominator > U64_MAX or denominator == 0:
        raise _error("MathOverflow")
    return reserve_out * amount // denominator


def _sqrt_price_from_reserves(token_a_amount: int, token_b_amount: int) -> int:
    if token_a_amount == 0:
        raise _error("MathOverflow")
    sqrt_price = math.isqrt((token_b_amount << 128) // token_a_amount)
    if sqrt_price > U128_MAX:
        raise _error("TypeCastFailed")
    return sqrt_price


# ---- the swap --------------------------------------------------------------------------------------------


def fee_mode(collect_fee_mode: int, a_to_b: bool) -> tuple[bool, bool]:
    """(fees_on_input, fees_on_token_a): BothToken takes the fee from the output token; OnlyB and
    Compounding always take it in B, so from the input of a B→A swap."""
    if collect_fee_mode == COLLECT_FEE_BOTH_TOKEN:
        return False, not a_to_b
    if collect_fee_mode in (COLLECT_FEE_ONLY_B, COLLECT_FEE_COMPOUNDING):
        return not a_to_b, False
    raise _error("TypeCastFailed")


def check_can_swap(
    pool: DammV2Pool, *, slot: int, unix_timestamp: int, payer_is_whitelisted_vault: bool = False
) -> None:
    """The pool's access rule: enabled, and activated (the whitelisted vault may come in early)."""
    if pool.activation_type == ACTIVATION_BY_SLOT:
        current_point, buffer = slot, SLOT_BUFFER
    elif pool.activation_type == ACTIVATION_BY_TIMESTAMP:
        current_point, buffer = unix_timestamp % (1 << 64), TIME_BUFFER
    else:
        raise _error("InvalidActivationType")
    if pool.pool_status != POOL_STATUS_ENABLED:
        raise _error("PoolDisabled")
    start = max(pool.activation_point - buffer, 0) if payer_is_whitelisted_vault else pool.activation_point
    if current_point < start:
        raise _error("PoolDisabled")


def swap_exact_in(
    pool: DammV2Pool,
    fees: DammV2Fees,
    amount_in: int,
    a_to_b: bool,
    *,
    slot: int,
    unix_timestamp: int,
    has_referral: bool = False,
    minimum_amount_out: int = 0,
    payer_is_whitelisted_vault: bool = False,
) -> DammV2SwapResult:
    """Swap `amount_in` of A (`a_to_b`) or of B as the program does, at the given clock.

    The scheduler and activation read `slot` or `unix_timestamp` by the pool's
    activation type; the dynamic fee always reads the timestamp. Raises `ProgramError`
    with the program's code (PoolDisabled 6003, AmountIsZero 6006, PriceRangeViolation
    6015, ExceededSlippage 6002, …), `UnsupportedPool` for fees we do not price.
    """
    if not 0 <= amount_in <= U64_MAX or not 0 <= minimum_amount_out <= U64_MAX:
        raise ValueError("amount_in and minimum_amount_out must be u64")
    check_can_swap(
        pool, slot=slot, unix_timestamp=unix_timestamp, payer_is_whitelisted_vault=payer_is_whitelisted_vault
    )
    if pool.layout_version not in (0, 1):
        raise _error("TypeCastFailed")
    if pool.layout_version == 0:
        if pool.collect_fee_mode not in (0, 1, 2):
            raise _error("TypeCastFailed")
        reserve_a, reserve_b = reserves_from_curve(pool)
        pool = msgspec.structs.replace(
            pool, token_a_amount=reserve_a, token_b_amount=reserve_b, layout_version=1
        )
    if amount_in == 0:
        raise _error("AmountIsZero")
    now = unix_timestamp % (1 << 64)
    current_point = slot if pool.activation_type == ACTIVATION_BY_SLOT else now
    # The rate limiter's single-swap check runs before anything is priced.
    if isinstance(fees.base_fee, RateLimiterFee) and rate_limiter_applies(
        fees.base_fee, current_point, pool.activation_point, a_to_b
    ):
        raise UnsupportedPool("DAMM v2 rate-limiter fee applies to this swap")
    dynamic_fee = fees.dynamic_fee
    if dynamic_fee.initialized:
        dynamic_fee = dynamic_fee_before_swap(dynamic_fee, pool.sqrt_price, now)
    fees_on_input, fees_on_token_a = fee_mode(pool.collect_fee_mode, a_to_b)
    numerator = fee_numerator(
        msgspec.structs.replace(fees, dynamic_fee=dynamic_fee),
        fee_version=pool.fee_version,
        current_point=current_point,
        activation_point=pool.activation_point,
        a_to_b=a_to_b,
    )

    split = fee_on_amount(fees, amount_in, numerator, has_referral) if fees_on_input else None
    curve_in = split.net if split else amount_in
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        curve_out, next_sqrt_price = _compounding_step(pool, curve_in, a_to_b), 0
    else:
        curve_out, next_sqrt_price = _concentrated_step(pool, curve_in, a_to_b)
    if split is None:
        split = fee_on_amount(fees, curve_out, numerator, has_referral)
        amount_out = split.net
    else:
        amount_out = curve_out
    if amount_out < minimum_amount_out:
        raise _error("ExceededSlippage")

    # apply_swap_result
    if pool.liquidity == 0:  # only a compounding pool gets here with none (shl_div_256 → None)
        raise _error("MathOverflow")
    fee_per_liquidity_delta = (split.claiming << 128) // pool.liquidity
    gross_out = (
        amount_out
        if fees_on_input
        else amount_out + split.claiming + split.compounding + split.protocol + split.referral
    )
    if a_to_b:
        token_a, token_b = pool.token_a_amount + curve_in, pool.token_b_amount - gross_out
    else:
        token_a, token_b = pool.token_a_amount - gross_out, pool.token_b_amount + curve_in
    token_b += split.compounding  # compounding fees always accrue to the B reserve
    if min(token_a, token_b) < 0 or max(token_a, token_b) > U64_MAX:
        raise _error("MathOverflow")
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        next_sqrt_price = _sqrt_price_from_reserves(token_a, token_b)
    if dynamic_fee.initialized:
        dynamic_fee = dynamic_fee_after_swap(dynamic_fee, pool.sqrt_price, next_sqrt_price, now)

    return DammV2SwapResult(
        a_to_b=a_to_b,
        amount_in=amount_in,
        curve_amount_in=curve_in,
        amount_out=amount_out,
        gross_amount_out=gross_out,
        fee_numerator=numerator,
        fee=split.fee,
        protocol_fee=split.protocol,
        referral_fee=split.referral,
        claiming_fee=split.claiming,
        compounding_fee=split.compounding,
        fees_on_input=fees_on_input,
        fees_on_token_a=fees_on_token_a,
        next_sqrt_price=next_sqrt_price,
        token_a_amount=token_a,
        token_b_amount=token_b,
        fee_per_liquidity_delta=fee_per_liquidity_delta,
        dynamic_fee=dynamic_fee,
    )


# ---- building and reading pools --------------------------------------------------------------------------


def pool_from_reserves(token_a_amount: int, token_b_amount: int) -> DammV2Pool:
    """A full-range concentrated pool holding (at most) the given reserves.

    The sqrt price solves the full-range reserve equations for the ratio, the
    liquidity is the larger one both reserves can carry, and the stored reserves are
    those recomputed from (price, liquidity) rounded up: never more than asked for,
    so vaults funded with the requested amounts cover them. Other fields take the
    `DammV2Pool` defaults; set them with `msgspec.structs.replace`.
    """
    if token_a_amount <= 0 or token_b_amount <= 0:
        raise ValueError("both reserves must be positive")
    shifted_b = token_b_amount << 128
    ratio = shifted_b // token_a_amount
    if ratio > MIN_SQRT_PRICE * MAX_SQRT_PRICE:
        d = ratio // MAX_SQRT_PRICE - MIN_SQRT_PRICE
        sqrt_price = (math.isqrt(d * d + 4 * ratio) - d) // 2
    else:
        d = MIN_SQRT_PRICE - ratio // MAX_SQRT_PRICE
        sqrt_price = (math.isqrt(d * d + 4 * ratio) + d) // 2
    if not MIN_SQRT_PRICE < sqrt_price < MAX_SQRT_PRICE:
        raise ValueError("the reserves' price is outside the full range")
    liquidity = min(
        token_a_amount * sqrt_price * MAX_SQRT_PRICE // (MAX_SQRT_PRICE - sqrt_price),
        shifted_b // (sqrt_price - MIN_SQRT_PRICE),
    )
    if liquidity > U128_MAX:
        raise ValueError("the reserves need more liquidity than a u128 holds")
    pool = DammV2Pool(sqrt_price=sqrt_price, liquidity=liquidity)
    reserve_a, reserve_b = reserves_from_curve(pool)
    return msgspec.structs.replace(pool, token_a_amount=reserve_a, token_b_amount=reserve_b)


def spot_price(pool: DammV2Pool, *, a_to_b: bool) -> Fraction:
    """Output per unit of input in raw units, before fees and impact.

    Concentrated pools: B per A is `sqrt_price² / 2^128`. Compounding pools: the
    ratio of the stored reserves.
    """
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        b_per_a = Fraction(pool.token_b_amount, pool.token_a_amount)
    else:
        b_per_a = Fraction(pool.sqrt_price * pool.sqrt_price, 1 << 128)
    return b_per_a if a_to_b else 1 / b_per_a


def price_impact(pool: DammV2Pool, result: DammV2SwapResult) -> Fraction:
    """How far the curve's own rate fell short of the spot price (fees excluded), in [0, 1)."""
    if result.curve_amount_in == 0:
        return Fraction(0)
    rate = Fraction(result.gross_amount_out, result.curve_amount_in)
    return 1 - rate / spot_price(pool, a_to_b=result.a_to_b)

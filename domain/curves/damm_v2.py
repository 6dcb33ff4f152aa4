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

Priced: base fee modes 0 (linear time scheduler) and 1 (exponential), mode 2 (rate
limiter) when the limiter cannot apply to this swap (it is then the cliff fee), the
dynamic fee. Not priced (`UnsupportedPool`): the rate limiter when it applies, the
market-cap schedulers (modes 3, 4), Token-2022 transfer fees (the caller checks the
mints).
"""

from __future__ import annotations

import math
from fractions import Fraction

import msgspec

from domain.curves.errors import METEORA_DAMM_V2_ERRORS, ProgramError, ProgramPanic, UnsupportedPool

FEE_DENOMINATOR = 1_000_000_000
MAX_BASIS_POINT = 10_000
ONE_Q64 = 1 << 64
MIN_SQRT_PRICE = 4_295_048_016
MAX_SQRT_PRICE = 79_226_673_521_066_979_257_578_248_091
# The fee cap by Pool.fee_version (a numerator over FEE_DENOMINATOR).
MAX_FEE_NUMERATOR = {0: 500_000_000, 1: 990_000_000}
# How long before activation the pool's whitelisted (alpha) vault may already swap.
SLOT_BUFFER = 9_000
TIME_BUFFER = 3_600

COLLECT_FEE_BOTH_TOKEN = 0
COLLECT_FEE_ONLY_B = 1
COLLECT_FEE_COMPOUNDING = 2
ACTIVATION_BY_SLOT = 0
ACTIVATION_BY_TIMESTAMP = 1
POOL_STATUS_ENABLED = 0

BASE_FEE_TIME_LINEAR = 0
BASE_FEE_TIME_EXPONENTIAL = 1
BASE_FEE_RATE_LIMITER = 2
BASE_FEE_MARKET_CAP_LINEAR = 3
BASE_FEE_MARKET_CAP_EXPONENTIAL = 4

U64_MAX = (1 << 64) - 1
U128_MAX = (1 << 128) - 1
U256_MAX = (1 << 256) - 1
# The exponent bound of the program's Q64 `pow` (19 bits of exponent).
_MAX_EXPONENTIAL = 0x80000


def _error(name: str) -> ProgramError:
    return METEORA_DAMM_V2_ERRORS.error(name)


# ---- fees ------------------------------------------------------------------------------------------------
# The pool's base fee is a 32-byte blob whose reading depends on its mode byte; each
# mode gets a struct of its own so that every field has one meaning.


class TimeSchedulerFee(msgspec.Struct, frozen=True):
    """Base fee modes 0 (linear) and 1 (exponential): the fee falls from the cliff each period.

    With `period_frequency == 0` the fee is the constant `cliff_fee_numerator`.
    """

    cliff_fee_numerator: int
    number_of_period: int = 0
    period_frequency: int = 0
    reduction_factor: int = 0
    base_fee_mode: int = BASE_FEE_TIME_LINEAR


class RateLimiterFee(msgspec.Struct, frozen=True):
    """Base fee mode 2: the fee rises with the size of a B→A swap for a while after activation."""

    cliff_fee_numerator: int
    fee_increment_bps: int = 0
    max_limiter_duration: int = 0
    max_fee_bps: int = 0
    reference_amount: int = 0
    base_fee_mode: int = BASE_FEE_RATE_LIMITER


class MarketCapSchedulerFee(msgspec.Struct, frozen=True):
    """Base fee modes 3 and 4: the fee falls as the price rises (not priced here)."""

    cliff_fee_numerator: int
    base_fee_mode: int = BASE_FEE_MARKET_CAP_LINEAR
    number_of_period: int = 0
    sqrt_price_step_bps: int = 0
    scheduler_expiration_duration: int = 0
    reduction_factor: int = 0


class UnknownBaseFee(msgspec.Struct, frozen=True):
    """A mode byte the program rejects (InvalidBaseFeeMode); `params` keeps blob bytes 14..32."""

    cliff_fee_numerator: int
    base_fee_mode: int
    params: bytes = bytes(18)


BaseFee = TimeSchedulerFee | RateLimiterFee | MarketCapSchedulerFee | UnknownBaseFee


class DynamicFee(msgspec.Struct, frozen=True):
    """The volatility fee's parameters and its state; it adds nothing when not initialized."""

    initialized: int = 0
    max_volatility_accumulator: int = 0
    variable_fee_control: int = 0
    bin_step: int = 0
    filter_period: int = 0
    decay_period: int = 0
    reduction_factor: int = 0
    last_update_timestamp: int = 0
    bin_step_u128: int = 0
    sqrt_price_reference: int = 0
    volatility_accumulator: int = 0
    volatility_reference: int = 0


class DammV2Fees(msgspec.Struct, frozen=True):
    """The Pool's fee block: base fee, shares (protocol %, referral % of protocol, compounding bps)."""

    base_fee: BaseFee
    protocol_fee_percent: int = 0
    referral_fee_percent: int = 0
    compounding_fee_bps: int = 0
    dynamic_fee: DynamicFee = msgspec.field(default_factory=DynamicFee)
    init_sqrt_price: int = 0


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


def pow_q64(base: int, exponent: int) -> int | None:
    """`base^exponent` in Q64.64 as the program's `fee_math::pow`; None where it gives up.

    Binary exponentiation, truncating after each product. A base ≥ 1 is inverted first
    (`u128::MAX / base`) so that squares stay below 2^128, and the result inverted back.
    """
    if exponent == 0:
        return ONE_Q64
    invert = exponent < 0
    exponent = abs(exponent)
    if exponent >= _MAX_EXPONENTIAL:
        return None
    squared = base
    result = ONE_Q64
    if squared >= result:
        squared = U128_MAX // squared
        invert = not invert
    for bit in range(19):
        if bit:
            square = squared * squared
            if square > U128_MAX:
                return None
            squared = square >> 64
        if exponent & (1 << bit):
            product = result * squared
            if product > U128_MAX:
                return None
            result = product >> 64
    if result == 0:
        return None
    if invert:
        result = U128_MAX // result
    return result


def _fee_in_period(cliff_fee_numerator: int, reduction_factor: int, period: int) -> int:
    """Exponential decay: `cliff × (1 − reduction/10_000)^period`, in Q64 as the program."""
    if reduction_factor == 0:
        return cliff_fee_numerator
    base = ONE_Q64 - (reduction_factor << 64) // MAX_BASIS_POINT
    if base < 0:
        raise _error("MathOverflow")
    power = pow_q64(base, period)
    if power is None:
        raise _error("MathOverflow")
    product = power * cliff_fee_numerator
    if product > U128_MAX:
        raise _error("MathOverflow")
    fee = product >> 64
    if fee > U64_MAX:
        raise _error("TypeCastFailed")
    return fee


def scheduler_fee_numerator(fee: TimeSchedulerFee, current_point: int, activation_point: int) -> int:
    """The time scheduler's base fee at `current_point` (a slot or a timestamp, as the pool activates).

    Before activation (an alpha vault buying) it is the fee of the last period.
    """
    if fee.period_frequency == 0:
        return fee.cliff_fee_numerator
    if current_point < activation_point:
        period = fee.number_of_period
    else:
        period = min((current_point - activation_point) // fee.period_frequency, fee.number_of_period)
    if fee.base_fee_mode == BASE_FEE_TIME_LINEAR:
        reduction = fee.reduction_factor * period
        if reduction > U64_MAX or reduction > fee.cliff_fee_numerator:
            raise _error("MathOverflow")
        return fee.cliff_fee_numerator - reduction
    return _fee_in_period(fee.cliff_fee_numerator, fee.reduction_factor, period)


def rate_limiter_applies(
    fee: RateLimiterFee, current_point: int, activation_point: int, a_to_b: bool
) -> bool:
    """Whether the rate limiter prices this swap: a B→A swap within its window after activation."""
    if not (fee.reference_amount or fee.max_limiter_duration or fee.max_fee_bps or fee.fee_increment_bps):
        return False  # an all-zero limiter is off
    if a_to_b or current_point < activation_point:
        return False
    return current_point <= activation_point + fee.max_limiter_duration


def _base_fee_numerator(fees: DammV2Fees, current_point: int, activation_point: int, a_to_b: bool) -> int:
    base = fees.base_fee
    if isinstance(base, TimeSchedulerFee) and base.base_fee_mode in (0, 1):
        return scheduler_fee_numerator(base, current_point, activation_point)
    if isinstance(base, RateLimiterFee):
        if rate_limiter_applies(base, current_point, activation_point, a_to_b):
            raise UnsupportedPool("DAMM v2 rate-limiter fee applies to this swap")
        return base.cliff_fee_numerator
    if isinstance(base, MarketCapSchedulerFee) and base.base_fee_mode in (3, 4):
        raise UnsupportedPool(f"DAMM v2 market-cap fee scheduler (base fee mode {base.base_fee_mode})")
    raise _error("InvalidBaseFeeMode")


def variable_fee_numerator(dynamic_fee: DynamicFee) -> int:
    """The dynamic (volatility) fee from the stored accumulator, rounded up; 0 when off."""
    if not dynamic_fee.initialized:
        return 0
    scaled = dynamic_fee.volatility_accumulator * dynamic_fee.bin_step
    if scaled > U128_MAX:
        raise _error("MathOverflow")
    square = scaled * scaled
    if square > U128_MAX:
        raise _error("TypeCastFailed")
    v_fee = square * dynamic_fee.variable_fee_control
    if v_fee + 99_999_999_999 > U128_MAX:
        raise _error("MathOverflow")
    return (v_fee + 99_999_999_999) // 100_000_000_000


def fee_numerator(
    fees: DammV2Fees, *, fee_version: int, current_point: int, activation_point: int, a_to_b: bool
) -> int:
    """The total trading fee numerator (over 1e9): base + dynamic, capped by the pool's fee version."""
    if fee_version not in MAX_FEE_NUMERATOR:
        raise _error("InvalidPoolVersion")
    total = _base_fee_numerator(fees, current_point, activation_point, a_to_b)
    total += variable_fee_numerator(fees.dynamic_fee)
    if total > U64_MAX:
        raise _error("TypeCastFailed")
    return min(total, MAX_FEE_NUMERATOR[fee_version])


class _Split(msgspec.Struct, frozen=True):
    net: int
    fee: int
    claiming: int
    compounding: int
    protocol: int
    referral: int


def _fee_on_amount(fees: DammV2Fees, amount: int, numerator: int, has_referral: bool) -> _Split:
    """Take the fee from `amount` (rounded up) and split it; each share rounds down."""
    fee = (amount * numerator + FEE_DENOMINATOR - 1) // FEE_DENOMINATOR
    if fee > U64_MAX:
        raise _error("TypeCastFailed")
    if fee > amount:
        raise _error("MathOverflow")
    protocol = fee * fees.protocol_fee_percent // 100
    if protocol > fee:
        raise _error("MathOverflow")
    trading = fee - protocol
    compounding = trading * fees.compounding_fee_bps // MAX_BASIS_POINT if fees.compounding_fee_bps else 0
    if compounding > trading:
        raise _error("MathOverflow")
    referral = protocol * fees.referral_fee_percent // 100 if has_referral else 0
    if referral > protocol:
        raise _error("MathOverflow")
    return _Split(amount - fee, fee, trading - compounding, compounding, protocol - referral, referral)


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


# ---- dynamic fee state -----------------------------------------------------------------------------------


def _delta_bin_id(bin_step_u128: int, sqrt_price_a: int, sqrt_price_b: int) -> int:
    upper, lower = max(sqrt_price_a, sqrt_price_b), min(sqrt_price_a, sqrt_price_b)
    if lower == 0:
        raise _error("MathOverflow")
    ratio = (upper << 64) // lower
    if ratio > U128_MAX or bin_step_u128 == 0:
        raise _error("MathOverflow")
    return (ratio - ONE_Q64) // bin_step_u128 * 2


def _dynamic_fee_before(dynamic_fee: DynamicFee, sqrt_price: int, now: int) -> DynamicFee:
    """`update_references`: after `filter_period` quiet seconds the reference moves to the
    current price and the volatility decays (to 0 after `decay_period`)."""
    elapsed = max(now - dynamic_fee.last_update_timestamp, 0)
    if elapsed < dynamic_fee.filter_period:
        return dynamic_fee
    if elapsed < dynamic_fee.decay_period:
        reference = dynamic_fee.volatility_accumulator * dynamic_fee.reduction_factor
        if reference > U128_MAX:
            raise _error("MathOverflow")
        reference //= MAX_BASIS_POINT
    else:
        reference = 0
    return msgspec.structs.replace(
        dynamic_fee, sqrt_price_reference=sqrt_price, volatility_reference=reference
    )


def _dynamic_fee_after(
    dynamic_fee: DynamicFee, old_sqrt_price: int, new_sqrt_price: int, now: int
) -> DynamicFee:
    """`update_post_swap`: the accumulator grows with the bins crossed from the reference; the
    timestamp moves only when the price crossed a bin."""
    delta = _delta_bin_id(dynamic_fee.bin_step_u128, new_sqrt_price, dynamic_fee.sqrt_price_reference)
    accumulator = dynamic_fee.volatility_reference + delta * MAX_BASIS_POINT
    if accumulator > U128_MAX:
        raise _error("MathOverflow")
    accumulator = min(accumulator, dynamic_fee.max_volatility_accumulator)
    crossed = _delta_bin_id(dynamic_fee.bin_step_u128, old_sqrt_price, new_sqrt_price) > 0
    return msgspec.structs.replace(
        dynamic_fee,
        volatility_accumulator=accumulator,
        last_update_timestamp=now if crossed else dynamic_fee.last_update_timestamp,
    )


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
        dynamic_fee = _dynamic_fee_before(dynamic_fee, pool.sqrt_price, now)
    fees_on_input, fees_on_token_a = fee_mode(pool.collect_fee_mode, a_to_b)
    numerator = fee_numerator(
        msgspec.structs.replace(fees, dynamic_fee=dynamic_fee),
        fee_version=pool.fee_version,
        current_point=current_point,
        activation_point=pool.activation_point,
        a_to_b=a_to_b,
    )

    split = _fee_on_amount(fees, amount_in, numerator, has_referral) if fees_on_input else None
    curve_in = split.net if split else amount_in
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        curve_out, next_sqrt_price = _compounding_step(pool, curve_in, a_to_b), 0
    else:
        curve_out, next_sqrt_price = _concentrated_step(pool, curve_in, a_to_b)
    if split is None:
        split = _fee_on_amount(fees, curve_out, numerator, has_referral)
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
        dynamic_fee = _dynamic_fee_after(dynamic_fee, pool.sqrt_price, next_sqrt_price, now)

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

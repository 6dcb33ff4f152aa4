"""Meteora DAMM v2 (cp-amm) trading fee, bit for bit: the base fee schedules, the dynamic
(volatility) fee and the split of a fee into its shares.

Apart from the swap step (`domain.curves.damm_v2`) because the fee is a machine of its
own: the pool's base fee is a 32-byte blob read by its mode byte (a time scheduler,
linear or exponential; a rate limiter; market-cap schedulers), the dynamic fee keeps
state that a swap updates before and after the curve step, and the total is capped by
the pool's fee version. Fees are numerators over `FEE_DENOMINATOR` (1e9). Where the
program's checked arithmetic fails we raise the error it returns.

Priced: base fee modes 0 and 1, mode 2 when the limiter cannot apply to this swap (it
is then the cliff fee), the dynamic fee. Not priced (`UnsupportedPool`): the rate
limiter when it applies, the market-cap schedulers (modes 3, 4).
"""

from __future__ import annotations

import msgspec

from domain.curves.errors import METEORA_DAMM_V2_ERRORS, ProgramError, UnsupportedPool
from domain.curves.integers import U64_MAX, U128_MAX

FEE_DENOMINATOR = 1_000_000_000
MAX_BASIS_POINT = 10_000
ONE_Q64 = 1 << 64
# The fee cap by Pool.fee_version (a numerator over FEE_DENOMINATOR).
MAX_FEE_NUMERATOR = {0: 500_000_000, 1: 990_000_000}

BASE_FEE_TIME_LINEAR = 0
BASE_FEE_TIME_EXPONENTIAL = 1
BASE_FEE_RATE_LIMITER = 2
BASE_FEE_MARKET_CAP_LINEAR = 3
BASE_FEE_MARKET_CAP_EXPONENTIAL = 4

# The exponent bound of the program's Q64 `pow` (19 bits of exponent).
_MAX_EXPONENTIAL = 0x80000


def _error(name: str) -> ProgramError:
    return METEORA_DAMM_V2_ERRORS.error(name)


# ---- the fee block -----------------------------------------------------------------------------------------
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


# ---- base fee and dynamic fee -----------------------------------------------------------------------------


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


class FeeSplit(msgspec.Struct, frozen=True):
    """A fee taken from an amount: what is left of it (`net`), the fee and its shares."""

    net: int
    fee: int
    claiming: int
    compounding: int
    protocol: int
    referral: int


def fee_on_amount(fees: DammV2Fees, amount: int, numerator: int, has_referral: bool) -> FeeSplit:
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
    return FeeSplit(amount - fee, fee, trading - compounding, compounding, protocol - referral, referral)


# ---- dynamic fee state -----------------------------------------------------------------------------------


def _delta_bin_id(bin_step_u128: int, sqrt_price_a: int, sqrt_price_b: int) -> int:
    upper, lower = max(sqrt_price_a, sqrt_price_b), min(sqrt_price_a, sqrt_price_b)
    if lower == 0:
        raise _error("MathOverflow")
    ratio = (upper << 64) // lower
    if ratio > U128_MAX or bin_step_u128 == 0:
        raise _error("MathOverflow")
    return (ratio - ONE_Q64) // bin_step_u128 * 2


def dynamic_fee_before_swap(dynamic_fee: DynamicFee, sqrt_price: int, now: int) -> DynamicFee:
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


def dynamic_fee_after_swap(
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

"""Raydium CPMM (raydium-cp-swap) `swap_base_input`, bit for bit.

The program's own arithmetic, in the order its handler runs it (the program as of
the 2025-11 audit fix, `ec3b20d`), so that the engine's quote and the local chain's
emulation of the program give the same numbers and fail with the same errors as the
chain. Python ints stand in for the program's u64/u128; where the program's checked
arithmetic would return `None` or panic, we raise the error it would end in.

Pricing in one paragraph: the reserves are the vault balances minus the protocol,
fund and creator fees the pool still owes; the trade fee is taken from the input
(rounded up), the protocol and fund fees are shares of it (rounded down), the curve
is `out = in × y / (x + in)` rounded down, and the creator fee is charged on the
input or the output depending on the pool's `creator_fee_on` mode and direction.

Not modelled: Token-2022 transfer fees (a caller that sees a transfer-fee mint
raises `UnsupportedPool` before calling) and the oracle observation update (it does
not affect prices).
"""

from __future__ import annotations

from fractions import Fraction

import msgspec

from domain.curves.errors import ANCHOR_REQUIRE_ERRORS, RAYDIUM_CPMM_ERRORS, ProgramPanic

FEE_RATE_DENOMINATOR = 1_000_000
# PoolState.status bits: a set bit disables the action (bit 0 deposit, 1 withdraw, 2 swap).
STATUS_SWAP_DISABLED = 1 << 2

# PoolState.creator_fee_on values.
CREATOR_FEE_ON_BOTH_TOKEN = 0
CREATOR_FEE_ON_ONLY_TOKEN_0 = 1
CREATOR_FEE_ON_ONLY_TOKEN_1 = 2

U64_MAX = (1 << 64) - 1
U128_MAX = (1 << 128) - 1


class CpmmFees(msgspec.Struct, frozen=True):
    """The fees a pool charges: its AmmConfig's rates (over 1e6) and its creator-fee mode.

    `protocol_fee_rate` and `fund_fee_rate` are shares of the trade fee;
    `creator_fee_rate` is a share of the amount. `creator_fee_on` and
    `enable_creator_fee` are PoolState fields; pools made before 2025-08 read as
    BothToken with the creator fee disabled.
    """

    trade_fee_rate: int
    protocol_fee_rate: int = 0
    fund_fee_rate: int = 0
    creator_fee_rate: int = 0
    creator_fee_on: int = CREATOR_FEE_ON_BOTH_TOKEN
    enable_creator_fee: bool = False


class CpmmFeesOwed(msgspec.Struct, frozen=True):
    """The fee counters in PoolState: fees sitting in the vaults that belong to others."""

    protocol_fees_token_0: int = 0
    protocol_fees_token_1: int = 0
    fund_fees_token_0: int = 0
    fund_fees_token_1: int = 0
    creator_fees_token_0: int = 0
    creator_fees_token_1: int = 0


class CpmmPool(msgspec.Struct, frozen=True):
    """What a swap reads: the two vault balances and the PoolState fields it checks."""

    vault_0_amount: int
    vault_1_amount: int
    fees_owed: CpmmFeesOwed = msgspec.field(default_factory=CpmmFeesOwed)
    status: int = 0
    open_time: int = 0


class CpmmSwapResult(msgspec.Struct, frozen=True):
    """One `swap_base_input`: the amounts moved, the fees, and the pool's new counters.

    `amount_in` goes from the user to the input vault and `amount_out` from the output
    vault to the user. `reserve_in`/`reserve_out` are the reserves before the swap
    (fees owed excluded), as the SwapEvent reports them. `fees_owed` is the PoolState
    fee counters after the swap: an emulator writes them back as they are.
    """

    zero_for_one: bool
    amount_in: int
    amount_out: int
    trade_fee: int
    protocol_fee: int
    fund_fee: int
    creator_fee: int
    creator_fee_on_input: bool
    reserve_in: int
    reserve_out: int
    fees_owed: CpmmFeesOwed


def reserves_without_fees(
    vault_0_amount: int, vault_1_amount: int, fees_owed: CpmmFeesOwed
) -> tuple[int, int]:
    """The pool's pricing reserves: each vault balance minus the fees it still owes.

    Raises MathOverflow if a vault's owed fees overflow u64, InsufficientVault if they
    exceed its balance (the program's `vault_amount_without_fee`).
    """
    owed_0 = fees_owed.protocol_fees_token_0 + fees_owed.fund_fees_token_0 + fees_owed.creator_fees_token_0
    owed_1 = fees_owed.protocol_fees_token_1 + fees_owed.fund_fees_token_1 + fees_owed.creator_fees_token_1
    # The program adds with checked u64 adds before it subtracts: an overflow wins.
    if owed_0 > U64_MAX or owed_1 > U64_MAX:
        raise RAYDIUM_CPMM_ERRORS.error("MathOverflow")
    if owed_0 > vault_0_amount or owed_1 > vault_1_amount:
        raise RAYDIUM_CPMM_ERRORS.error("InsufficientVault")
    return vault_0_amount - owed_0, vault_1_amount - owed_1


def is_creator_fee_on_input(creator_fee_on: int, zero_for_one: bool) -> bool:
    """Whether the creator fee is charged on the input side for this direction.

    BothToken: always on the input. OnlyToken0/OnlyToken1: on the input when that
    token is the input, otherwise on the output. Other modes: InvalidFeeModel.
    """
    if creator_fee_on == CREATOR_FEE_ON_BOTH_TOKEN:
        return True
    if creator_fee_on == CREATOR_FEE_ON_ONLY_TOKEN_0:
        return zero_for_one
    if creator_fee_on == CREATOR_FEE_ON_ONLY_TOKEN_1:
        return not zero_for_one
    raise RAYDIUM_CPMM_ERRORS.error("InvalidFeeModel")


def _ceil_rate(amount: int, rate: int) -> int | None:
    """`ceil(amount × rate / 1e6)` as the program's checked u128 `ceil_div` (None on overflow)."""
    numerator = amount * rate + FEE_RATE_DENOMINATOR - 1
    return None if numerator > U128_MAX else numerator // FEE_RATE_DENOMINATOR


def _floor_div(amount: int, numerator: int, denominator: int) -> int | None:
    """`floor(amount × numerator / denominator)`; None for a zero denominator, as the program."""
    if denominator == 0:
        return None
    product = amount * numerator
    return None if product > U128_MAX else product // denominator


class _Curve(msgspec.Struct, frozen=True):
    """`CurveCalculator::swap_base_input`'s result (all u128 in the program)."""

    input_less_fees: int
    output_swapped: int
    output_amount: int
    trade_fee: int
    protocol_fee: int
    fund_fee: int
    creator_fee: int


def _curve_swap(
    amount: int, reserve_in: int, reserve_out: int, fees: CpmmFees, creator_rate: int, on_input: bool
) -> _Curve | None:
    """The fee split and the constant-product step; None where the program's Option is None."""
    trade_rate = fees.trade_fee_rate
    creator_fee = 0
    if on_input:
        # One combined ceil over both rates, then a floor split (the post-audit rule);
        # a pool whose trade and creator rates are both 0 divides by zero here: None.
        total_fee = _ceil_rate(amount, trade_rate + creator_rate)
        if total_fee is None:
            return None
        split = _floor_div(total_fee, creator_rate, trade_rate + creator_rate)
        if split is None:
            return None
        creator_fee = split
        trade_fee = total_fee - creator_fee
        input_less_fees = amount - total_fee
    else:
        ceil_fee = _ceil_rate(amount, trade_rate)
        if ceil_fee is None:
            return None
        trade_fee = ceil_fee
        input_less_fees = amount - trade_fee
    if input_less_fees < 0:
        return None
    protocol_fee = _floor_div(trade_fee, fees.protocol_fee_rate, FEE_RATE_DENOMINATOR)
    fund_fee = _floor_div(trade_fee, fees.fund_fee_rate, FEE_RATE_DENOMINATOR)
    if protocol_fee is None or fund_fee is None:
        return None
    # The curve itself is unchecked in the program (`unwrap`): a zero denominator panics.
    if reserve_in + input_less_fees == 0:
        raise ProgramPanic("division by zero in the constant-product curve")
    output_swapped = input_less_fees * reserve_out // (reserve_in + input_less_fees)
    if on_input:
        output_amount = output_swapped
    else:
        ceil_creator = _ceil_rate(output_swapped, creator_rate)
        if ceil_creator is None:
            return None
        creator_fee = ceil_creator
        output_amount = output_swapped - creator_fee
        if output_amount < 0:
            return None
    return _Curve(
        input_less_fees, output_swapped, output_amount, trade_fee, protocol_fee, fund_fee, creator_fee
    )


def _check_u64(name: str, value: int) -> None:
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{name} must be a u64, got {value}")


def swap_base_input(
    pool: CpmmPool,
    fees: CpmmFees,
    amount_in: int,
    *,
    zero_for_one: bool,
    unix_timestamp: int,
    minimum_amount_out: int = 0,
) -> CpmmSwapResult:
    """Swap `amount_in` of token 0 (`zero_for_one`) or token 1 as the program does.

    `unix_timestamp` is the cluster clock's; a swap before `open_time` or on a pool
    whose swap bit is set fails with NotApproved (6000). Raises `ProgramError` with the
    code the program returns (ZeroTradingTokens 6006, ExceededSlippage 6005, Anchor's
    RequireGtViolated 2505 for a zero input or output, …) and `ProgramPanic` where it
    would abort without one.
    """
    _check_u64("amount_in", amount_in)
    _check_u64("minimum_amount_out", minimum_amount_out)
    # Step 1. The clock is an i64 the program casts to u64 (a negative time wraps).
    block_timestamp = unix_timestamp % (1 << 64)
    if pool.status & STATUS_SWAP_DISABLED or block_timestamp < pool.open_time:
        raise RAYDIUM_CPMM_ERRORS.error("NotApproved")
    # Step 2. No transfer fee for classic SPL mints: the whole amount reaches the curve.
    actual_amount_in = amount_in
    if actual_amount_in <= 0:
        raise ANCHOR_REQUIRE_ERRORS.error("RequireGtViolated")
    # Step 3. get_swap_params: reserves, then the oracle prices (which divide by each
    # reserve, so an empty side panics here), then the creator-fee side.
    reserve_0, reserve_1 = reserves_without_fees(pool.vault_0_amount, pool.vault_1_amount, pool.fees_owed)
    if reserve_0 == 0 or reserve_1 == 0:
        raise ProgramPanic("division by zero in the oracle price: a reserve is empty")
    on_input = is_creator_fee_on_input(fees.creator_fee_on, zero_for_one)
    reserve_in, reserve_out = (reserve_0, reserve_1) if zero_for_one else (reserve_1, reserve_0)
    # Step 4-6.
    constant_before = reserve_in * reserve_out
    creator_rate = fees.creator_fee_rate if fees.enable_creator_fee else 0
    curve = _curve_swap(actual_amount_in, reserve_in, reserve_out, fees, creator_rate, on_input)
    if curve is None:
        raise RAYDIUM_CPMM_ERRORS.error("ZeroTradingTokens")
    # Step 7. The new curve balances (only used for the K check), unchecked in the program.
    new_in = reserve_in + curve.input_less_fees
    new_out = reserve_out - curve.output_swapped
    constant_after = new_in * new_out
    if new_in > U128_MAX or constant_after > U128_MAX:
        raise ProgramPanic("u128 overflow computing the constant after the swap")
    # Step 8. No output transfer fee either: the user receives the whole amount.
    amount_out = curve.output_amount
    if amount_out <= 0:
        raise ANCHOR_REQUIRE_ERRORS.error("RequireGtViolated")
    if amount_out < minimum_amount_out:
        raise RAYDIUM_CPMM_ERRORS.error("ExceededSlippage")
    # Step 9. update_fees.
    if not fees.enable_creator_fee and curve.creator_fee != 0:
        raise ANCHOR_REQUIRE_ERRORS.error("RequireEqViolated")
    fees_owed = _owed_after(pool.fees_owed, curve, zero_for_one, on_input)
    # Step 10. The K check comes after the event, but before any transfer.
    if constant_after < constant_before:
        raise ANCHOR_REQUIRE_ERRORS.error("RequireGteViolated")
    return CpmmSwapResult(
        zero_for_one=zero_for_one,
        amount_in=amount_in,
        amount_out=amount_out,
        trade_fee=curve.trade_fee,
        protocol_fee=curve.protocol_fee,
        fund_fee=curve.fund_fee,
        creator_fee=curve.creator_fee,
        creator_fee_on_input=on_input,
        reserve_in=reserve_in,
        reserve_out=reserve_out,
        fees_owed=fees_owed,
    )


def _owed_after(owed: CpmmFeesOwed, curve: _Curve, zero_for_one: bool, on_input: bool) -> CpmmFeesOwed:
    """The counters `update_fees` leaves: protocol and fund fees in the input token, the
    creator fee in whichever token it was charged in."""
    creator_in_token_0 = zero_for_one == on_input
    updated = msgspec.structs.replace(
        owed,
        protocol_fees_token_0=owed.protocol_fees_token_0 + (curve.protocol_fee if zero_for_one else 0),
        protocol_fees_token_1=owed.protocol_fees_token_1 + (0 if zero_for_one else curve.protocol_fee),
        fund_fees_token_0=owed.fund_fees_token_0 + (curve.fund_fee if zero_for_one else 0),
        fund_fees_token_1=owed.fund_fees_token_1 + (0 if zero_for_one else curve.fund_fee),
        creator_fees_token_0=owed.creator_fees_token_0 + (curve.creator_fee if creator_in_token_0 else 0),
        creator_fees_token_1=owed.creator_fees_token_1 + (0 if creator_in_token_0 else curve.creator_fee),
    )
    # The program's `checked_add(..).unwrap()`: an overflowing counter panics.
    if any(value > U64_MAX for value in msgspec.structs.astuple(updated)):
        raise ProgramPanic("u64 overflow in a fee counter")
    return updated


def spot_price(pool: CpmmPool, *, zero_for_one: bool) -> Fraction:
    """Output per unit of input in raw units, before fees and impact: `r_out / r_in`."""
    reserve_0, reserve_1 = reserves_without_fees(pool.vault_0_amount, pool.vault_1_amount, pool.fees_owed)
    if reserve_0 == 0 or reserve_1 == 0:
        raise ProgramPanic("a reserve is empty")
    return Fraction(reserve_1, reserve_0) if zero_for_one else Fraction(reserve_0, reserve_1)


def price_impact(result: CpmmSwapResult) -> Fraction:
    """How far the curve's own rate fell short of the spot price (fees excluded), in [0, 1)."""
    creator_on_input = result.creator_fee if result.creator_fee_on_input else 0
    curve_in = result.amount_in - result.trade_fee - creator_on_input
    curve_out = result.amount_out + (0 if result.creator_fee_on_input else result.creator_fee)
    if curve_in <= 0:
        return Fraction(0)
    return 1 - Fraction(curve_out * result.reserve_in, curve_in * result.reserve_out)

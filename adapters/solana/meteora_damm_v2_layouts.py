"""Byte layout of the Meteora DAMM v2 (cp-amm) Pool account (1112 B), with its fee block.

Apart from the other programs' layouts because each program's accounts change with
its own releases. Offsets are the program's (MeteoraAg/damm-v2 release 0.2.x, written
beside each codec) and include the 8-byte Anchor discriminator, which decoding checks
(`LayoutError`); checking the account's owner is the caller's job. The fee block
decodes into the structs of `domain.curves.damm_v2_fees` (the base fee's 32-byte blob
by its mode byte). Padding is written as zeros: fields retired into padding by older
program versions (the partner fee) are not kept, and the reward blocks the swap never
reads are kept as raw bytes. Also here: the Pool a swap leaves.
"""

from __future__ import annotations

import struct

import msgspec
from solders.pubkey import Pubkey

from adapters.solana.layout_fields import (
    LayoutError,
    check_account,
    read_key,
    read_u128,
    read_u256,
    write_int,
    write_key,
)
from adapters.solana.programs import DAMM_V2_POOL
from domain.curves.damm_v2 import DammV2Pool, DammV2SwapResult
from domain.curves.damm_v2_fees import (
    BaseFee,
    DammV2Fees,
    DynamicFee,
    MarketCapSchedulerFee,
    RateLimiterFee,
    TimeSchedulerFee,
    UnknownBaseFee,
)
from domain.curves.errors import METEORA_DAMM_V2_ERRORS
from domain.curves.integers import U64_MAX, U256_MAX

DAMM_V2_POOL_SIZE = 1112


class DammV2PoolAccount(msgspec.Struct, frozen=True):
    """Pool (release 0.2.x). `pool_fees` is the 160-byte fee block; `reward_infos` the two
    192-byte reward blocks, kept raw (a swap never reads them)."""

    pool_fees: DammV2Fees
    token_a_mint: Pubkey
    token_b_mint: Pubkey
    token_a_vault: Pubkey
    token_b_vault: Pubkey
    whitelisted_vault: Pubkey
    liquidity: int
    sqrt_min_price: int
    sqrt_max_price: int
    sqrt_price: int
    protocol_a_fee: int = 0
    protocol_b_fee: int = 0
    activation_point: int = 0
    activation_type: int = 0
    pool_status: int = 0
    token_a_flag: int = 0
    token_b_flag: int = 0
    collect_fee_mode: int = 0
    pool_type: int = 0
    fee_version: int = 0
    fee_a_per_liquidity: int = 0
    fee_b_per_liquidity: int = 0
    permanent_lock_liquidity: int = 0
    total_lp_a_fee: int = 0
    total_lp_b_fee: int = 0
    total_protocol_a_fee: int = 0
    total_protocol_b_fee: int = 0
    total_position: int = 0
    creator: Pubkey = msgspec.field(default_factory=Pubkey.default)
    token_a_amount: int = 0
    token_b_amount: int = 0
    layout_version: int = 1
    reward_infos: bytes = bytes(384)

    def curve_pool(self) -> DammV2Pool:
        """The pricing state `domain.curves.damm_v2.swap_exact_in` reads."""
        return DammV2Pool(
            sqrt_price=self.sqrt_price,
            liquidity=self.liquidity,
            sqrt_min_price=self.sqrt_min_price,
            sqrt_max_price=self.sqrt_max_price,
            collect_fee_mode=self.collect_fee_mode,
            token_a_amount=self.token_a_amount,
            token_b_amount=self.token_b_amount,
            layout_version=self.layout_version,
            activation_point=self.activation_point,
            activation_type=self.activation_type,
            pool_status=self.pool_status,
            fee_version=self.fee_version,
        )


# Offsets of the base-fee blob's mode-specific fields (account offsets).
_BLOB_PARAMS_AT = 22
_TIME_SCHEDULER = struct.Struct("<HQQ")  # number_of_period, period_frequency, reduction_factor
_RATE_LIMITER = struct.Struct("<HIIQ")  # fee_increment_bps, max_limiter_duration, max_fee_bps, reference
_MARKET_CAP = struct.Struct("<HIIQ")  # number_of_period, sqrt_price_step_bps, expiration, reduction


def _decode_base_fee(data: bytes) -> BaseFee:
    cliff, mode = struct.unpack_from("<QB", data, 8)
    params = data[_BLOB_PARAMS_AT:40]
    if mode in (0, 1):
        periods, frequency, reduction = _TIME_SCHEDULER.unpack(params)
        return TimeSchedulerFee(cliff, periods, frequency, reduction, mode)
    if mode == 2:
        increment, duration, max_fee_bps, reference = _RATE_LIMITER.unpack(params)
        return RateLimiterFee(cliff, increment, duration, max_fee_bps, reference)
    if mode in (3, 4):
        periods, step_bps, expiration, reduction = _MARKET_CAP.unpack(params)
        return MarketCapSchedulerFee(cliff, mode, periods, step_bps, expiration, reduction)
    return UnknownBaseFee(cliff, mode, bytes(params))


def _encode_base_fee(buffer: bytearray, fee: BaseFee) -> None:
    struct.pack_into("<QB", buffer, 8, fee.cliff_fee_numerator, fee.base_fee_mode)
    if isinstance(fee, TimeSchedulerFee):
        params = _TIME_SCHEDULER.pack(fee.number_of_period, fee.period_frequency, fee.reduction_factor)
    elif isinstance(fee, RateLimiterFee):
        params = _RATE_LIMITER.pack(
            fee.fee_increment_bps, fee.max_limiter_duration, fee.max_fee_bps, fee.reference_amount
        )
    elif isinstance(fee, MarketCapSchedulerFee):
        params = _MARKET_CAP.pack(
            fee.number_of_period,
            fee.sqrt_price_step_bps,
            fee.scheduler_expiration_duration,
            fee.reduction_factor,
        )
    else:
        params = fee.params
    buffer[_BLOB_PARAMS_AT:40] = params


# DynamicFeeStruct @56: initialized u8, pad 7, max_vol u32 @64, vfc u32 @68, bin_step u16 @72,
# filter u16 @74, decay u16 @76, reduction u16 @78, last_update u64 @80, then u128s @88..152.
_DYNAMIC_HEAD = struct.Struct("<B7xIIHHHHQ")


def _decode_dynamic_fee(data: bytes) -> DynamicFee:
    initialized, max_volatility, control, bin_step, filter_period, decay_period, reduction, last_update = (
        _DYNAMIC_HEAD.unpack_from(data, 56)
    )
    return DynamicFee(
        initialized=initialized,
        max_volatility_accumulator=max_volatility,
        variable_fee_control=control,
        bin_step=bin_step,
        filter_period=filter_period,
        decay_period=decay_period,
        reduction_factor=reduction,
        last_update_timestamp=last_update,
        bin_step_u128=read_u128(data, 88),
        sqrt_price_reference=read_u128(data, 104),
        volatility_accumulator=read_u128(data, 120),
        volatility_reference=read_u128(data, 136),
    )


def _encode_dynamic_fee(buffer: bytearray, fee: DynamicFee) -> None:
    _DYNAMIC_HEAD.pack_into(
        buffer,
        56,
        fee.initialized,
        fee.max_volatility_accumulator,
        fee.variable_fee_control,
        fee.bin_step,
        fee.filter_period,
        fee.decay_period,
        fee.reduction_factor,
        fee.last_update_timestamp,
    )
    for offset, value in (
        (88, fee.bin_step_u128),
        (104, fee.sqrt_price_reference),
        (120, fee.volatility_accumulator),
        (136, fee.volatility_reference),
    ):
        write_int(buffer, offset, value, 16)


# Pool u8 flags @480..487: activation_type, pool_status, token_a_flag, token_b_flag,
# collect_fee_mode, pool_type, fee_version, padding.
_POOL_FLAGS = struct.Struct("<7Bx")


def decode_damm_v2_pool(data: bytes) -> DammV2PoolAccount:
    check_account(data, "Meteora DAMM v2 Pool", DAMM_V2_POOL_SIZE, DAMM_V2_POOL)
    protocol_percent, referral_percent = data[48], data[50]
    (compounding_bps,) = struct.unpack_from("<H", data, 54)
    fees = DammV2Fees(
        base_fee=_decode_base_fee(data),
        protocol_fee_percent=protocol_percent,
        referral_fee_percent=referral_percent,
        compounding_fee_bps=compounding_bps,
        dynamic_fee=_decode_dynamic_fee(data),
        init_sqrt_price=read_u128(data, 152),
    )
    protocol_a, protocol_b = struct.unpack_from("<QQ", data, 392)
    (activation_point,) = struct.unpack_from("<Q", data, 472)
    activation_type, status, flag_a, flag_b, collect_mode, pool_type, fee_version = _POOL_FLAGS.unpack_from(
        data, 480
    )
    total_protocol_a, total_protocol_b = struct.unpack_from("<QQ", data, 600)
    (total_position,) = struct.unpack_from("<Q", data, 632)
    token_a_amount, token_b_amount, layout_version = struct.unpack_from("<QQB", data, 680)
    return DammV2PoolAccount(
        pool_fees=fees,
        token_a_mint=read_key(data, 168),
        token_b_mint=read_key(data, 200),
        token_a_vault=read_key(data, 232),
        token_b_vault=read_key(data, 264),
        whitelisted_vault=read_key(data, 296),
        liquidity=read_u128(data, 360),
        sqrt_min_price=read_u128(data, 424),
        sqrt_max_price=read_u128(data, 440),
        sqrt_price=read_u128(data, 456),
        protocol_a_fee=protocol_a,
        protocol_b_fee=protocol_b,
        activation_point=activation_point,
        activation_type=activation_type,
        pool_status=status,
        token_a_flag=flag_a,
        token_b_flag=flag_b,
        collect_fee_mode=collect_mode,
        pool_type=pool_type,
        fee_version=fee_version,
        fee_a_per_liquidity=read_u256(data, 488),
        fee_b_per_liquidity=read_u256(data, 520),
        permanent_lock_liquidity=read_u128(data, 552),
        total_lp_a_fee=read_u128(data, 568),
        total_lp_b_fee=read_u128(data, 584),
        total_protocol_a_fee=total_protocol_a,
        total_protocol_b_fee=total_protocol_b,
        total_position=total_position,
        creator=read_key(data, 648),
        token_a_amount=token_a_amount,
        token_b_amount=token_b_amount,
        layout_version=layout_version,
        reward_infos=bytes(data[728:1112]),
    )


def encode_damm_v2_pool(pool: DammV2PoolAccount) -> bytes:
    if len(pool.reward_infos) != 384:
        raise LayoutError("DAMM v2 Pool reward_infos must be 384 bytes")
    buffer = bytearray(DAMM_V2_POOL_SIZE)
    buffer[0:8] = DAMM_V2_POOL
    fees = pool.pool_fees
    _encode_base_fee(buffer, fees.base_fee)
    buffer[48] = fees.protocol_fee_percent
    buffer[50] = fees.referral_fee_percent
    struct.pack_into("<H", buffer, 54, fees.compounding_fee_bps)
    _encode_dynamic_fee(buffer, fees.dynamic_fee)
    write_int(buffer, 152, fees.init_sqrt_price, 16)
    for offset, key in (
        (168, pool.token_a_mint),
        (200, pool.token_b_mint),
        (232, pool.token_a_vault),
        (264, pool.token_b_vault),
        (296, pool.whitelisted_vault),
        (648, pool.creator),
    ):
        write_key(buffer, offset, key)
    for offset, value in (
        (360, pool.liquidity),
        (424, pool.sqrt_min_price),
        (440, pool.sqrt_max_price),
        (456, pool.sqrt_price),
        (552, pool.permanent_lock_liquidity),
        (568, pool.total_lp_a_fee),
        (584, pool.total_lp_b_fee),
    ):
        write_int(buffer, offset, value, 16)
    struct.pack_into("<QQ", buffer, 392, pool.protocol_a_fee, pool.protocol_b_fee)
    struct.pack_into("<Q", buffer, 472, pool.activation_point)
    _POOL_FLAGS.pack_into(
        buffer,
        480,
        pool.activation_type,
        pool.pool_status,
        pool.token_a_flag,
        pool.token_b_flag,
        pool.collect_fee_mode,
        pool.pool_type,
        pool.fee_version,
    )
    write_int(buffer, 488, pool.fee_a_per_liquidity, 32)
    write_int(buffer, 520, pool.fee_b_per_liquidity, 32)
    struct.pack_into("<QQ", buffer, 600, pool.total_protocol_a_fee, pool.total_protocol_b_fee)
    struct.pack_into("<Q", buffer, 632, pool.total_position)
    struct.pack_into("<QQB", buffer, 680, pool.token_a_amount, pool.token_b_amount, pool.layout_version)
    buffer[728:1112] = pool.reward_infos
    return bytes(buffer)


def apply_damm_v2_swap(pool: DammV2PoolAccount, result: DammV2SwapResult) -> DammV2PoolAccount:
    """The Pool a swap leaves (`apply_swap_result`): fees accrue in the fee token, the curve and
    reserves move, the dynamic fee state updates, and the layout is marked as tracking reserves.

    Raises MathOverflow (6000) where the program's checked adds would overflow.
    """
    on_a = result.fees_on_token_a
    protocol = (pool.protocol_a_fee if on_a else pool.protocol_b_fee) + result.protocol_fee
    per_liquidity = (
        pool.fee_a_per_liquidity if on_a else pool.fee_b_per_liquidity
    ) + result.fee_per_liquidity_delta
    lp_total = (
        (pool.total_lp_a_fee if on_a else pool.total_lp_b_fee) + result.claiming_fee + result.compounding_fee
    )
    protocol_total = (pool.total_protocol_a_fee if on_a else pool.total_protocol_b_fee) + result.protocol_fee
    if protocol > U64_MAX or protocol_total > U64_MAX or per_liquidity > U256_MAX or lp_total >= 1 << 128:
        raise METEORA_DAMM_V2_ERRORS.error("MathOverflow")
    side = "a" if on_a else "b"
    return msgspec.structs.replace(
        pool,
        **{
            f"protocol_{side}_fee": protocol,
            f"fee_{side}_per_liquidity": per_liquidity,
            f"total_lp_{side}_fee": lp_total,
            f"total_protocol_{side}_fee": protocol_total,
        },
        pool_fees=msgspec.structs.replace(pool.pool_fees, dynamic_fee=result.dynamic_fee),
        sqrt_price=result.next_sqrt_price,
        token_a_amount=result.token_a_amount,
        token_b_amount=result.token_b_amount,
        layout_version=1,
    )

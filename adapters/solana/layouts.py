"""Byte layouts of the accounts the engine reads and the local chain writes.

Raydium CPMM PoolState (637 B), AmmConfig (236 B) and ObservationState (4075 B),
Meteora DAMM v2 Pool (1112 B), SPL Token Account (165 B) and Mint (82 B), decoded
into frozen Structs and encoded back. Offsets are the programs' (from the research
notes, written beside each codec and including the 8-byte Anchor discriminator the
program accounts start with, which decoding checks); integers are little-endian.

Public keys are held as `solders.pubkey.Pubkey` (hashable, compared by bytes, and
what the instruction builders take), never as base58 strings.

Decoding checks the size and the discriminator and raises `LayoutError`; checking
the account's owner program is the caller's job (the Raydium CLMM program has
accounts with the same names, hence the same discriminators). Padding is written as
zeros: fields retired into padding by older program versions (DAMM v2's partner
fee) are not kept, and reward blocks the swap never reads are kept as raw bytes.
"""

from __future__ import annotations

import struct

import msgspec
from solders.pubkey import Pubkey

from adapters.solana.programs import CPMM_AMM_CONFIG, CPMM_OBSERVATION_STATE, CPMM_POOL_STATE, DAMM_V2_POOL
from domain.curves.cpmm import CpmmFees, CpmmFeesOwed, CpmmPool, CpmmSwapResult
from domain.curves.damm_v2 import (
    BaseFee,
    DammV2Fees,
    DammV2Pool,
    DammV2SwapResult,
    DynamicFee,
    MarketCapSchedulerFee,
    RateLimiterFee,
    TimeSchedulerFee,
    UnknownBaseFee,
)
from domain.curves.errors import METEORA_DAMM_V2_ERRORS

CPMM_POOL_STATE_SIZE = 637
CPMM_AMM_CONFIG_SIZE = 236
CPMM_OBSERVATION_STATE_SIZE = 4075
CPMM_OBSERVATION_COUNT = 100
DAMM_V2_POOL_SIZE = 1112
TOKEN_ACCOUNT_SIZE = 165
MINT_SIZE = 82

U64_MAX = (1 << 64) - 1
U256_MAX = (1 << 256) - 1


class LayoutError(ValueError):
    """The bytes are not the account they were decoded as (size, discriminator, option tag)."""


def _check(data: bytes, name: str, size: int, discriminator: bytes | None = None) -> None:
    if len(data) != size:
        raise LayoutError(f"{name}: expected {size} bytes, got {len(data)}")
    if discriminator is not None and data[:8] != discriminator:
        raise LayoutError(f"{name}: discriminator {data[:8].hex()} is not {discriminator.hex()}")


def _u128(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 16], "little")


def _u256(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 32], "little")


def _key(data: bytes, offset: int) -> Pubkey:
    return Pubkey.from_bytes(data[offset : offset + 32])


def _put(buffer: bytearray, offset: int, value: int, size: int) -> None:
    buffer[offset : offset + size] = value.to_bytes(size, "little")


def _put_key(buffer: bytearray, offset: int, key: Pubkey) -> None:
    buffer[offset : offset + 32] = bytes(key)


# ---- Raydium CPMM ----------------------------------------------------------------------------------------


class CpmmPoolState(msgspec.Struct, frozen=True):
    """PoolState. `fees_owed` holds the six fee counters (protocol, fund, creator × token 0/1)."""

    amm_config: Pubkey
    pool_creator: Pubkey
    token_0_vault: Pubkey
    token_1_vault: Pubkey
    lp_mint: Pubkey
    token_0_mint: Pubkey
    token_1_mint: Pubkey
    token_0_program: Pubkey
    token_1_program: Pubkey
    observation_key: Pubkey
    auth_bump: int
    status: int
    lp_mint_decimals: int
    mint_0_decimals: int
    mint_1_decimals: int
    lp_supply: int
    fees_owed: CpmmFeesOwed
    open_time: int
    recent_epoch: int = 0
    creator_fee_on: int = 0
    enable_creator_fee: bool = False


# 8 disc, 10 keys (8..328), 5 u8 (328..333), 7 u64 (333..389), creator_fee_on u8 389,
# enable_creator_fee 390, padding1 391..397, creator fees 397/405, padding 413..637.
_CPMM_POOL = struct.Struct("<8s" + "32s" * 10 + "5B" + "7Q" + "BB6x" + "2Q" + "224x")
assert _CPMM_POOL.size == CPMM_POOL_STATE_SIZE


def decode_cpmm_pool_state(data: bytes) -> CpmmPoolState:
    _check(data, "Raydium CPMM PoolState", CPMM_POOL_STATE_SIZE, CPMM_POOL_STATE)
    fields = _CPMM_POOL.unpack(data)
    keys = [Pubkey.from_bytes(raw) for raw in fields[1:11]]
    bump, status, lp_decimals, decimals_0, decimals_1 = fields[11:16]
    lp_supply, protocol_0, protocol_1, fund_0, fund_1, open_time, recent_epoch = fields[16:23]
    creator_fee_on, enable_creator_fee, creator_0, creator_1 = fields[23:27]
    return CpmmPoolState(
        amm_config=keys[0],
        pool_creator=keys[1],
        token_0_vault=keys[2],
        token_1_vault=keys[3],
        lp_mint=keys[4],
        token_0_mint=keys[5],
        token_1_mint=keys[6],
        token_0_program=keys[7],
        token_1_program=keys[8],
        observation_key=keys[9],
        auth_bump=bump,
        status=status,
        lp_mint_decimals=lp_decimals,
        mint_0_decimals=decimals_0,
        mint_1_decimals=decimals_1,
        lp_supply=lp_supply,
        fees_owed=CpmmFeesOwed(protocol_0, protocol_1, fund_0, fund_1, creator_0, creator_1),
        open_time=open_time,
        recent_epoch=recent_epoch,
        creator_fee_on=creator_fee_on,
        enable_creator_fee=enable_creator_fee != 0,
    )


def encode_cpmm_pool_state(state: CpmmPoolState) -> bytes:
    owed = state.fees_owed
    keys = (
        state.amm_config,
        state.pool_creator,
        state.token_0_vault,
        state.token_1_vault,
        state.lp_mint,
        state.token_0_mint,
        state.token_1_mint,
        state.token_0_program,
        state.token_1_program,
        state.observation_key,
    )
    return _CPMM_POOL.pack(
        CPMM_POOL_STATE,
        *(bytes(key) for key in keys),
        state.auth_bump,
        state.status,
        state.lp_mint_decimals,
        state.mint_0_decimals,
        state.mint_1_decimals,
        state.lp_supply,
        owed.protocol_fees_token_0,
        owed.protocol_fees_token_1,
        owed.fund_fees_token_0,
        owed.fund_fees_token_1,
        state.open_time,
        state.recent_epoch,
        state.creator_fee_on,
        int(state.enable_creator_fee),
        owed.creator_fees_token_0,
        owed.creator_fees_token_1,
    )


class CpmmAmmConfig(msgspec.Struct, frozen=True):
    """AmmConfig: fee rates over 1e6 (protocol and fund are shares of the trade fee)."""

    bump: int
    disable_create_pool: bool
    index: int
    trade_fee_rate: int
    protocol_fee_rate: int
    fund_fee_rate: int
    create_pool_fee: int
    protocol_owner: Pubkey
    fund_owner: Pubkey
    creator_fee_rate: int = 0


_CPMM_CONFIG = struct.Struct("<8sBBH4Q32s32sQ120x")
assert _CPMM_CONFIG.size == CPMM_AMM_CONFIG_SIZE


def decode_cpmm_amm_config(data: bytes) -> CpmmAmmConfig:
    _check(data, "Raydium CPMM AmmConfig", CPMM_AMM_CONFIG_SIZE, CPMM_AMM_CONFIG)
    _, bump, disable, index, trade, protocol, fund, create_fee, protocol_owner, fund_owner, creator = (
        _CPMM_CONFIG.unpack(data)
    )
    if disable > 1:  # a Borsh account: its bool must be 0 or 1
        raise LayoutError(f"Raydium CPMM AmmConfig: bool byte {disable}")
    return CpmmAmmConfig(
        bump,
        disable == 1,
        index,
        trade,
        protocol,
        fund,
        create_fee,
        Pubkey.from_bytes(protocol_owner),
        Pubkey.from_bytes(fund_owner),
        creator,
    )


def encode_cpmm_amm_config(config: CpmmAmmConfig) -> bytes:
    return _CPMM_CONFIG.pack(
        CPMM_AMM_CONFIG,
        config.bump,
        int(config.disable_create_pool),
        config.index,
        config.trade_fee_rate,
        config.protocol_fee_rate,
        config.fund_fee_rate,
        config.create_pool_fee,
        bytes(config.protocol_owner),
        bytes(config.fund_owner),
        config.creator_fee_rate,
    )


def cpmm_curve_inputs(
    state: CpmmPoolState, config: CpmmAmmConfig, vault_0_amount: int, vault_1_amount: int
) -> tuple[CpmmPool, CpmmFees]:
    """What `domain.curves.cpmm.swap_base_input` needs, from the accounts and vault balances."""
    pool = CpmmPool(vault_0_amount, vault_1_amount, state.fees_owed, state.status, state.open_time)
    fees = CpmmFees(
        config.trade_fee_rate,
        config.protocol_fee_rate,
        config.fund_fee_rate,
        config.creator_fee_rate,
        state.creator_fee_on,
        state.enable_creator_fee,
    )
    return pool, fees


def apply_cpmm_swap(state: CpmmPoolState, result: CpmmSwapResult, epoch: int) -> CpmmPoolState:
    """The PoolState a swap leaves: the fee counters and `recent_epoch` (nothing else changes)."""
    return msgspec.structs.replace(state, fees_owed=result.fees_owed, recent_epoch=epoch)


class CpmmObservation(msgspec.Struct, frozen=True):
    block_timestamp: int = 0
    cumulative_token_0_price_x32: int = 0
    cumulative_token_1_price_x32: int = 0


class CpmmObservationState(msgspec.Struct, frozen=True):
    """The TWAP ring buffer: 100 observations, the write index and the last update time."""

    initialized: bool
    observation_index: int
    pool_id: Pubkey
    observations: tuple[CpmmObservation, ...]
    last_update_timestamp: int = 0


# initialized 8, observation_index 9, pool_id 11, observations 43 + 40*i, last_update 4043.
_OBSERVATION_HEAD = struct.Struct("<8sBH32s")
_OBSERVATION = struct.Struct("<Q16s16s")
_OBSERVATIONS_AT = 43
_LAST_UPDATE_AT = _OBSERVATIONS_AT + CPMM_OBSERVATION_COUNT * _OBSERVATION.size


def decode_cpmm_observation_state(data: bytes) -> CpmmObservationState:
    _check(data, "Raydium CPMM ObservationState", CPMM_OBSERVATION_STATE_SIZE, CPMM_OBSERVATION_STATE)
    _, initialized, index, pool_id = _OBSERVATION_HEAD.unpack_from(data)
    observations = tuple(
        CpmmObservation(ts, int.from_bytes(cum_0, "little"), int.from_bytes(cum_1, "little"))
        for ts, cum_0, cum_1 in _OBSERVATION.iter_unpack(data[_OBSERVATIONS_AT:_LAST_UPDATE_AT])
    )
    (last_update,) = struct.unpack_from("<Q", data, _LAST_UPDATE_AT)
    return CpmmObservationState(
        initialized != 0, index, Pubkey.from_bytes(pool_id), observations, last_update
    )


def encode_cpmm_observation_state(state: CpmmObservationState) -> bytes:
    if len(state.observations) != CPMM_OBSERVATION_COUNT:
        raise LayoutError(f"ObservationState holds {CPMM_OBSERVATION_COUNT} observations")
    buffer = bytearray(CPMM_OBSERVATION_STATE_SIZE)
    _OBSERVATION_HEAD.pack_into(
        buffer,
        0,
        CPMM_OBSERVATION_STATE,
        int(state.initialized),
        state.observation_index,
        bytes(state.pool_id),
    )
    for i, obs in enumerate(state.observations):
        _OBSERVATION.pack_into(
            buffer,
            _OBSERVATIONS_AT + i * _OBSERVATION.size,
            obs.block_timestamp,
            obs.cumulative_token_0_price_x32.to_bytes(16, "little"),
            obs.cumulative_token_1_price_x32.to_bytes(16, "little"),
        )
    struct.pack_into("<Q", buffer, _LAST_UPDATE_AT, state.last_update_timestamp)
    return bytes(buffer)


def new_cpmm_observation_state(pool_id: Pubkey) -> bytes:
    """The account as the program's `initialize` leaves it: only `pool_id` set; the first swap
    marks it initialized."""
    empty = tuple(CpmmObservation() for _ in range(CPMM_OBSERVATION_COUNT))
    return encode_cpmm_observation_state(CpmmObservationState(False, 0, pool_id, empty))


# ---- Meteora DAMM v2 -------------------------------------------------------------------------------------


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
        bin_step_u128=_u128(data, 88),
        sqrt_price_reference=_u128(data, 104),
        volatility_accumulator=_u128(data, 120),
        volatility_reference=_u128(data, 136),
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
        _put(buffer, offset, value, 16)


# Pool u8 flags @480..487: activation_type, pool_status, token_a_flag, token_b_flag,
# collect_fee_mode, pool_type, fee_version, padding.
_POOL_FLAGS = struct.Struct("<7Bx")


def decode_damm_v2_pool(data: bytes) -> DammV2PoolAccount:
    _check(data, "Meteora DAMM v2 Pool", DAMM_V2_POOL_SIZE, DAMM_V2_POOL)
    protocol_percent, referral_percent = data[48], data[50]
    (compounding_bps,) = struct.unpack_from("<H", data, 54)
    fees = DammV2Fees(
        base_fee=_decode_base_fee(data),
        protocol_fee_percent=protocol_percent,
        referral_fee_percent=referral_percent,
        compounding_fee_bps=compounding_bps,
        dynamic_fee=_decode_dynamic_fee(data),
        init_sqrt_price=_u128(data, 152),
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
        token_a_mint=_key(data, 168),
        token_b_mint=_key(data, 200),
        token_a_vault=_key(data, 232),
        token_b_vault=_key(data, 264),
        whitelisted_vault=_key(data, 296),
        liquidity=_u128(data, 360),
        sqrt_min_price=_u128(data, 424),
        sqrt_max_price=_u128(data, 440),
        sqrt_price=_u128(data, 456),
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
        fee_a_per_liquidity=_u256(data, 488),
        fee_b_per_liquidity=_u256(data, 520),
        permanent_lock_liquidity=_u128(data, 552),
        total_lp_a_fee=_u128(data, 568),
        total_lp_b_fee=_u128(data, 584),
        total_protocol_a_fee=total_protocol_a,
        total_protocol_b_fee=total_protocol_b,
        total_position=total_position,
        creator=_key(data, 648),
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
    _put(buffer, 152, fees.init_sqrt_price, 16)
    for offset, key in (
        (168, pool.token_a_mint),
        (200, pool.token_b_mint),
        (232, pool.token_a_vault),
        (264, pool.token_b_vault),
        (296, pool.whitelisted_vault),
        (648, pool.creator),
    ):
        _put_key(buffer, offset, key)
    for offset, value in (
        (360, pool.liquidity),
        (424, pool.sqrt_min_price),
        (440, pool.sqrt_max_price),
        (456, pool.sqrt_price),
        (552, pool.permanent_lock_liquidity),
        (568, pool.total_lp_a_fee),
        (584, pool.total_lp_b_fee),
    ):
        _put(buffer, offset, value, 16)
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
    _put(buffer, 488, pool.fee_a_per_liquidity, 32)
    _put(buffer, 520, pool.fee_b_per_liquidity, 32)
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


# ---- SPL Token -------------------------------------------------------------------------------------------
# A Token-2022 account or mint with extensions is longer: the base layout, padding up to
# 165 bytes, then an account-type byte (1 mint, 2 account) and the extensions.
_ACCOUNT_TYPE_MINT = 1
_ACCOUNT_TYPE_ACCOUNT = 2

ACCOUNT_STATE_UNINITIALIZED = 0
ACCOUNT_STATE_INITIALIZED = 1
ACCOUNT_STATE_FROZEN = 2


class TokenAccount(msgspec.Struct, frozen=True):
    """A token account; `is_native` is the rent-exempt reserve of a wrapped-SOL account."""

    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None = None
    state: int = ACCOUNT_STATE_INITIALIZED
    is_native: int | None = None
    delegated_amount: int = 0
    close_authority: Pubkey | None = None


class Mint(msgspec.Struct, frozen=True):
    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool = True
    freeze_authority: Pubkey | None = None


# COption<T> is a u32 tag (0 None, 1 Some) followed by T's bytes (zeros when None).
def _option_tag(data: bytes, offset: int, name: str) -> bool:
    tag: int = struct.unpack_from("<I", data, offset)[0]
    if tag > 1:
        raise LayoutError(f"{name}: option tag {tag} at {offset}")
    return tag == 1


def _option_key(data: bytes, offset: int, name: str) -> Pubkey | None:
    return _key(data, offset + 4) if _option_tag(data, offset, name) else None


def _put_option_key(buffer: bytearray, offset: int, key: Pubkey | None) -> None:
    struct.pack_into("<I", buffer, offset, 0 if key is None else 1)
    buffer[offset + 4 : offset + 36] = bytes(32) if key is None else bytes(key)


def _check_token_size(data: bytes, name: str, size: int, account_type: int) -> None:
    if len(data) == size or (len(data) > TOKEN_ACCOUNT_SIZE and data[TOKEN_ACCOUNT_SIZE] == account_type):
        return
    raise LayoutError(f"{name}: {len(data)} bytes is neither the base {size} nor an extended account")


def decode_token_account(data: bytes) -> TokenAccount:
    """mint 0, owner 32, amount 64, delegate 72, state 108, is_native 109, delegated 121, close 129."""
    _check_token_size(data, "token account", TOKEN_ACCOUNT_SIZE, _ACCOUNT_TYPE_ACCOUNT)
    (amount,) = struct.unpack_from("<Q", data, 64)
    state = data[108]
    if state > ACCOUNT_STATE_FROZEN:
        raise LayoutError(f"token account: state {state}")
    (native_reserve,) = struct.unpack_from("<Q", data, 113)
    (delegated_amount,) = struct.unpack_from("<Q", data, 121)
    return TokenAccount(
        mint=_key(data, 0),
        owner=_key(data, 32),
        amount=amount,
        delegate=_option_key(data, 72, "token account delegate"),
        state=state,
        is_native=native_reserve if _option_tag(data, 109, "token account is_native") else None,
        delegated_amount=delegated_amount,
        close_authority=_option_key(data, 129, "token account close_authority"),
    )


def encode_token_account(account: TokenAccount) -> bytes:
    buffer = bytearray(TOKEN_ACCOUNT_SIZE)
    _put_key(buffer, 0, account.mint)
    _put_key(buffer, 32, account.owner)
    struct.pack_into("<Q", buffer, 64, account.amount)
    _put_option_key(buffer, 72, account.delegate)
    buffer[108] = account.state
    struct.pack_into("<IQ", buffer, 109, 0 if account.is_native is None else 1, account.is_native or 0)
    struct.pack_into("<Q", buffer, 121, account.delegated_amount)
    _put_option_key(buffer, 129, account.close_authority)
    return bytes(buffer)


def decode_mint(data: bytes) -> Mint:
    """mint_authority 0, supply 36, decimals 44, is_initialized 45, freeze_authority 46."""
    _check_token_size(data, "mint", MINT_SIZE, _ACCOUNT_TYPE_MINT)
    (supply,) = struct.unpack_from("<Q", data, 36)
    if data[45] > 1:
        raise LayoutError(f"mint: is_initialized byte {data[45]}")
    return Mint(
        mint_authority=_option_key(data, 0, "mint authority"),
        supply=supply,
        decimals=data[44],
        is_initialized=data[45] == 1,
        freeze_authority=_option_key(data, 46, "mint freeze_authority"),
    )


def encode_mint(mint: Mint) -> bytes:
    buffer = bytearray(MINT_SIZE)
    _put_option_key(buffer, 0, mint.mint_authority)
    struct.pack_into("<QB?", buffer, 36, mint.supply, mint.decimals, mint.is_initialized)
    _put_option_key(buffer, 46, mint.freeze_authority)
    return bytes(buffer)

"""Byte layouts of the Raydium CPMM accounts: PoolState (637 B), AmmConfig (236 B) and
ObservationState (4075 B), decoded into frozen Structs and encoded back.

Apart from the other programs' layouts because each program's accounts change with
its own releases. Offsets are the program's (raydium-io/raydium-cp-swap, written
beside each codec) and include the 8-byte Anchor discriminator, which decoding checks
(`LayoutError` on a wrong size or discriminator); checking the account's owner is the
caller's job (the Raydium CLMM program has accounts with the same names, hence the
same discriminators). Padding is written as zeros. Also here: what the pure curve
(`domain.curves.cpmm`) needs from these accounts, and the PoolState a swap leaves.
"""

from __future__ import annotations

import struct

import msgspec
from solders.pubkey import Pubkey

from adapters.solana.layout_fields import LayoutError, check_account
from adapters.solana.programs import CPMM_AMM_CONFIG, CPMM_OBSERVATION_STATE, CPMM_POOL_STATE
from domain.curves.cpmm import CpmmFees, CpmmFeesOwed, CpmmPool, CpmmSwapResult

CPMM_POOL_STATE_SIZE = 637
CPMM_AMM_CONFIG_SIZE = 236
CPMM_OBSERVATION_STATE_SIZE = 4075
CPMM_OBSERVATION_COUNT = 100


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
    check_account(data, "Raydium CPMM PoolState", CPMM_POOL_STATE_SIZE, CPMM_POOL_STATE)
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
    check_account(data, "Raydium CPMM AmmConfig", CPMM_AMM_CONFIG_SIZE, CPMM_AMM_CONFIG)
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
    check_account(data, "Raydium CPMM ObservationState", CPMM_OBSERVATION_STATE_SIZE, CPMM_OBSERVATION_STATE)
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

"""Account layouts: bytes built by hand at the documented offsets decode to the right fields,
encode→decode round trips, and a wrong size or discriminator is a LayoutError."""

from __future__ import annotations

import struct

import msgspec
import pytest
from solders.pubkey import Pubkey

from adapters.solana.layout_fields import LayoutError
from adapters.solana.meteora_damm_v2_layouts import (
    apply_damm_v2_swap,
    decode_damm_v2_pool,
    encode_damm_v2_pool,
)
from adapters.solana.programs import CPMM_AMM_CONFIG, CPMM_OBSERVATION_STATE, CPMM_POOL_STATE, DAMM_V2_POOL
from adapters.solana.raydium_cpmm_layouts import (
    CpmmAmmConfig,
    CpmmObservation,
    CpmmObservationState,
    apply_cpmm_swap,
    cpmm_curve_inputs,
    decode_cpmm_amm_config,
    decode_cpmm_observation_state,
    decode_cpmm_pool_state,
    encode_cpmm_amm_config,
    encode_cpmm_observation_state,
    encode_cpmm_pool_state,
    new_cpmm_observation_state,
)
from adapters.solana.token_layouts import (
    Mint,
    TokenAccount,
    decode_mint,
    decode_token_account,
    encode_mint,
    encode_token_account,
)
from domain.curves.cpmm import CpmmFeesOwed, swap_base_input
from domain.curves.damm_v2 import swap_exact_in
from domain.curves.damm_v2_fees import DynamicFee, RateLimiterFee, TimeSchedulerFee, UnknownBaseFee

POOL_STATE_DISC = bytes([247, 237, 227, 245, 215, 195, 222, 70])
AMM_CONFIG_DISC = bytes([218, 244, 33, 104, 203, 203, 43, 111])
OBSERVATION_DISC = bytes([122, 174, 197, 53, 129, 9, 165, 132])
DAMM_POOL_DISC = bytes.fromhex("f19a6d0411b16dbc")


def key(n: int) -> Pubkey:
    return Pubkey(bytes([n]) * 32)


def put_u128(buffer: bytearray, offset: int, value: int) -> None:
    buffer[offset : offset + 16] = value.to_bytes(16, "little")


def test_account_discriminators_are_the_programs_bytes() -> None:
    assert (CPMM_POOL_STATE, CPMM_AMM_CONFIG, CPMM_OBSERVATION_STATE, DAMM_V2_POOL) == (
        POOL_STATE_DISC,
        AMM_CONFIG_DISC,
        OBSERVATION_DISC,
        DAMM_POOL_DISC,
    )


# ---- Raydium CPMM ----------------------------------------------------------------------------------------


def hand_built_pool_state() -> bytes:
    data = bytearray(637)
    data[0:8] = POOL_STATE_DISC
    for i, offset in enumerate(range(8, 328, 32)):  # amm_config .. observation_key
        data[offset : offset + 32] = bytes([i + 1]) * 32
    data[328:333] = bytes([255, 0b100, 9, 6, 9])  # auth_bump, status, lp/mint0/mint1 decimals
    struct.pack_into("<7Q", data, 333, 1_000, 3_000, 30, 1_000, 10, 1_700_000_000, 800)
    data[389], data[390] = 2, 1  # creator_fee_on OnlyToken1, enable_creator_fee
    struct.pack_into("<QQ", data, 397, 77, 88)
    return bytes(data)


def test_cpmm_pool_state_decodes_the_documented_offsets() -> None:
    state = decode_cpmm_pool_state(hand_built_pool_state())
    assert (state.amm_config, state.token_0_vault, state.token_1_mint, state.observation_key) == (
        key(1),
        key(3),
        key(7),
        key(10),
    )
    assert (state.auth_bump, state.status, state.mint_0_decimals, state.lp_supply) == (255, 4, 6, 1_000)
    assert state.fees_owed == CpmmFeesOwed(3_000, 30, 1_000, 10, 77, 88)
    assert (state.open_time, state.recent_epoch, state.creator_fee_on, state.enable_creator_fee) == (
        1_700_000_000,
        800,
        2,
        True,
    )


def test_cpmm_pool_state_round_trips() -> None:
    data = hand_built_pool_state()
    assert encode_cpmm_pool_state(decode_cpmm_pool_state(data)) == data


def test_cpmm_pool_state_with_a_clmm_sized_account_is_refused() -> None:
    with pytest.raises(LayoutError, match="637"):
        decode_cpmm_pool_state(hand_built_pool_state() + bytes(1))


def test_cpmm_pool_state_with_another_discriminator_is_refused() -> None:
    data = bytearray(hand_built_pool_state())
    data[0:8] = AMM_CONFIG_DISC
    with pytest.raises(LayoutError, match="discriminator"):
        decode_cpmm_pool_state(bytes(data))


def hand_built_amm_config() -> bytes:
    data = bytearray(236)
    data[0:8] = AMM_CONFIG_DISC
    data[8], data[9] = 250, 0
    struct.pack_into("<H", data, 10, 3)
    struct.pack_into("<4Q", data, 12, 2_500, 120_000, 40_000, 150_000_000)
    data[44:76], data[76:108] = bytes(key(20)), bytes(key(21))
    struct.pack_into("<Q", data, 108, 500)
    return bytes(data)


def test_cpmm_amm_config_decodes_rates_at_12_20_28_and_creator_rate_at_108() -> None:
    config = decode_cpmm_amm_config(hand_built_amm_config())
    assert config == CpmmAmmConfig(250, False, 3, 2_500, 120_000, 40_000, 150_000_000, key(20), key(21), 500)
    assert encode_cpmm_amm_config(config) == hand_built_amm_config()


def test_cpmm_amm_config_with_a_non_boolean_flag_is_refused() -> None:
    data = bytearray(hand_built_amm_config())
    data[9] = 2
    with pytest.raises(LayoutError):
        decode_cpmm_amm_config(bytes(data))


def test_cpmm_accounts_feed_the_curve_the_reports_example() -> None:
    state = msgspec.structs.replace(
        decode_cpmm_pool_state(hand_built_pool_state()),
        status=0,
        open_time=0,
        fees_owed=CpmmFeesOwed(),
        enable_creator_fee=False,
    )
    config = msgspec.structs.replace(decode_cpmm_amm_config(hand_built_amm_config()), creator_fee_rate=0)
    pool, fees = cpmm_curve_inputs(state, config, 1_000_000_000, 2_000_000_000)
    result = swap_base_input(pool, fees, 10_000_000, zero_for_one=True, unix_timestamp=1)
    assert result.amount_out == 19_752_964
    after = apply_cpmm_swap(state, result, epoch=901)
    assert (after.fees_owed.protocol_fees_token_0, after.fees_owed.fund_fees_token_0) == (3_000, 1_000)
    assert after.recent_epoch == 901
    assert msgspec.structs.replace(after, fees_owed=state.fees_owed, recent_epoch=state.recent_epoch) == state


def test_cpmm_observation_state_decodes_entries_at_43_plus_40_i() -> None:
    data = bytearray(4075)
    data[0:8] = OBSERVATION_DISC
    data[8] = 1
    struct.pack_into("<H", data, 9, 3)
    data[11:43] = bytes(key(9))
    struct.pack_into("<Q", data, 43 + 40 * 3, 1_700_000_123)
    put_u128(data, 43 + 40 * 3 + 8, 2**100 + 5)
    put_u128(data, 43 + 40 * 3 + 24, 7)
    struct.pack_into("<Q", data, 4043, 1_700_000_130)
    state = decode_cpmm_observation_state(bytes(data))
    assert (state.initialized, state.observation_index, state.pool_id) == (True, 3, key(9))
    assert state.observations[3] == CpmmObservation(1_700_000_123, 2**100 + 5, 7)
    assert state.observations[4] == CpmmObservation()
    assert state.last_update_timestamp == 1_700_000_130
    assert encode_cpmm_observation_state(state) == bytes(data)


def test_new_cpmm_observation_state_is_uninitialized_with_its_pool() -> None:
    data = new_cpmm_observation_state(key(5))
    assert len(data) == 4075 and data[:8] == OBSERVATION_DISC and data[8] == 0
    assert data[11:43] == bytes(key(5)) and not any(data[43:])
    assert decode_cpmm_observation_state(data) == CpmmObservationState(
        False, 0, key(5), tuple(CpmmObservation() for _ in range(100))
    )


# ---- Meteora DAMM v2 -------------------------------------------------------------------------------------

S = 7_144_393_260_748_141_011
L = 7_144_393_261_392_398_213_787_312_892_591_812


def hand_built_damm_pool() -> bytearray:
    data = bytearray(1112)
    data[0:8] = DAMM_POOL_DISC
    struct.pack_into("<QB", data, 8, 2_500_000, 1)  # cliff, mode 1 (exponential)
    struct.pack_into("<HQQ", data, 22, 120, 60, 265)  # number_of_period, period_frequency, reduction
    data[48], data[50] = 20, 20  # protocol %, referral %
    struct.pack_into("<H", data, 54, 0)
    data[56] = 1  # dynamic fee initialized
    struct.pack_into("<IIHHHHQ", data, 64, 14_460_000, 1_913, 1, 10, 120, 5_000, 1_699_999_000)
    for offset, value in ((88, 1_844_674_407_370_955), (104, S), (120, 11), (136, 12), (152, S)):
        put_u128(data, offset, value)
    for offset, n in ((168, 1), (200, 2), (232, 3), (264, 4), (296, 5), (648, 6)):
        data[offset : offset + 32] = bytes(key(n))
    put_u128(data, 360, L)
    struct.pack_into("<QQ", data, 392, 41, 42)
    put_u128(data, 424, 4_295_048_016)
    put_u128(data, 440, 79_226_673_521_066_979_257_578_248_091)
    put_u128(data, 456, S)
    struct.pack_into("<Q", data, 472, 1_000)
    data[480:487] = bytes([1, 0, 0, 1, 1, 0, 1])  # activation_type … fee_version
    data[488:520] = (2**200 + 3).to_bytes(32, "little")
    data[520:552] = (9).to_bytes(32, "little")
    put_u128(data, 568, 500)
    struct.pack_into("<QQ", data, 600, 60, 70)
    struct.pack_into("<QQB", data, 680, 10**15, 15 * 10**13, 1)
    data[728] = 1  # a reward block, kept raw
    return data


def test_damm_v2_pool_decodes_the_documented_offsets() -> None:
    pool = decode_damm_v2_pool(bytes(hand_built_damm_pool()))
    assert pool.pool_fees.base_fee == TimeSchedulerFee(2_500_000, 120, 60, 265, base_fee_mode=1)
    assert (pool.pool_fees.protocol_fee_percent, pool.pool_fees.referral_fee_percent) == (20, 20)
    assert pool.pool_fees.dynamic_fee == DynamicFee(
        1, 14_460_000, 1_913, 1, 10, 120, 5_000, 1_699_999_000, 1_844_674_407_370_955, S, 11, 12
    )
    assert pool.pool_fees.init_sqrt_price == S
    assert (pool.token_a_mint, pool.token_b_mint, pool.token_a_vault, pool.token_b_vault) == (
        key(1),
        key(2),
        key(3),
        key(4),
    )
    assert (pool.liquidity, pool.sqrt_price, pool.protocol_a_fee, pool.protocol_b_fee) == (L, S, 41, 42)
    assert (pool.activation_point, pool.activation_type, pool.pool_status, pool.collect_fee_mode) == (
        1_000,
        1,
        0,
        1,
    )
    assert (pool.fee_version, pool.fee_a_per_liquidity, pool.fee_b_per_liquidity) == (1, 2**200 + 3, 9)
    assert (pool.total_lp_a_fee, pool.total_protocol_a_fee, pool.total_protocol_b_fee) == (500, 60, 70)
    assert (pool.token_a_amount, pool.token_b_amount, pool.layout_version) == (10**15, 15 * 10**13, 1)


def test_damm_v2_pool_round_trips_including_the_reward_blocks() -> None:
    data = bytes(hand_built_damm_pool())
    assert encode_damm_v2_pool(decode_damm_v2_pool(data)) == data


def test_damm_v2_rate_limiter_blob_reads_its_own_fields() -> None:
    data = hand_built_damm_pool()
    data[16] = 2
    struct.pack_into("<HIIQ", data, 22, 10, 100, 5_000, 10**9)
    pool = decode_damm_v2_pool(bytes(data))
    assert pool.pool_fees.base_fee == RateLimiterFee(2_500_000, 10, 100, 5_000, 10**9)
    assert encode_damm_v2_pool(pool) == bytes(data)


def test_damm_v2_unknown_base_fee_mode_keeps_its_bytes() -> None:
    data = hand_built_damm_pool()
    data[16] = 9
    data[22:40] = bytes(range(18))
    pool = decode_damm_v2_pool(bytes(data))
    assert pool.pool_fees.base_fee == UnknownBaseFee(2_500_000, 9, bytes(range(18)))
    assert encode_damm_v2_pool(pool) == bytes(data)


def test_damm_v2_pool_with_the_config_discriminator_is_refused() -> None:
    data = hand_built_damm_pool()
    data[0:8] = bytes.fromhex("9b0caae01efacc82")  # account:Config
    with pytest.raises(LayoutError, match="discriminator"):
        decode_damm_v2_pool(bytes(data))


def test_damm_v2_swap_applied_to_the_account_moves_fees_reserves_and_price() -> None:
    decoded = decode_damm_v2_pool(bytes(hand_built_damm_pool()))
    constant_fee = msgspec.structs.replace(
        decoded.pool_fees, base_fee=TimeSchedulerFee(2_500_000), dynamic_fee=DynamicFee()
    )
    account = msgspec.structs.replace(decoded, pool_fees=constant_fee, activation_point=0, collect_fee_mode=0)
    result = swap_exact_in(account.curve_pool(), account.pool_fees, 10**9, True, slot=5, unix_timestamp=5)
    assert result.amount_out == 149_624_850
    after = apply_damm_v2_swap(account, result)
    # fee 375_000 in B: protocol 75_000 (no referral), LP 300_000
    assert (after.protocol_a_fee, after.protocol_b_fee) == (41, 42 + 75_000)
    assert after.fee_b_per_liquidity == 9 + (300_000 << 128) // L
    assert (after.total_lp_b_fee, after.total_protocol_b_fee) == (300_000, 70 + 75_000)
    assert (after.token_a_amount, after.token_b_amount) == (10**15 + 10**9, 15 * 10**13 - 149_999_850)
    assert after.sqrt_price == result.next_sqrt_price < S
    assert decode_damm_v2_pool(encode_damm_v2_pool(after)) == after


# ---- SPL Token -------------------------------------------------------------------------------------------


def test_token_account_decodes_options_and_amounts_at_their_offsets() -> None:
    data = bytearray(165)
    data[0:32], data[32:64] = bytes(key(1)), bytes(key(2))
    struct.pack_into("<Q", data, 64, 5_000_000)
    struct.pack_into("<I", data, 72, 1)
    data[76:108] = bytes(key(3))
    data[108] = 1
    struct.pack_into("<IQ", data, 109, 1, 2_039_280)
    struct.pack_into("<Q", data, 121, 1_000)
    account = decode_token_account(bytes(data))
    assert account == TokenAccount(
        key(1),
        key(2),
        5_000_000,
        delegate=key(3),
        state=1,
        is_native=2_039_280,
        delegated_amount=1_000,
        close_authority=None,
    )
    assert encode_token_account(account) == bytes(data)


def test_token_account_with_a_bad_option_tag_is_refused() -> None:
    data = bytearray(encode_token_account(TokenAccount(key(1), key(2), 1)))
    data[129] = 2
    with pytest.raises(LayoutError, match="option tag"):
        decode_token_account(bytes(data))


def test_token_2022_account_with_extensions_decodes_its_base() -> None:
    base = encode_token_account(TokenAccount(key(1), key(2), 7))
    extended = base + bytes([2]) + bytes(10)  # account type 2 (Account), then extensions
    assert decode_token_account(extended).amount == 7
    with pytest.raises(LayoutError):
        decode_token_account(base + bytes([1]) + bytes(10))  # a mint's type byte


def test_mint_decodes_authorities_supply_and_decimals() -> None:
    data = bytearray(82)
    struct.pack_into("<I", data, 0, 1)
    data[4:36] = bytes(key(4))
    struct.pack_into("<QBB", data, 36, 10**15, 9, 1)
    mint = decode_mint(bytes(data))
    assert mint == Mint(mint_authority=key(4), supply=10**15, decimals=9, is_initialized=True)
    assert encode_mint(mint) == bytes(data)


def test_wrapped_sol_mint_round_trips_without_authorities() -> None:
    mint = Mint(mint_authority=None, supply=0, decimals=9, freeze_authority=None)
    data = encode_mint(mint)
    assert len(data) == 82 and data[44] == 9 and data[45] == 1
    assert decode_mint(data) == mint


def test_mint_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(LayoutError, match="82"):
        decode_mint(bytes(81))

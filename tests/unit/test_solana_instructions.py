"""Program ids, PDAs, discriminators and errors; the instructions byte for byte, with their
account order and flags; and the swap parsers' round trips and errors."""

from __future__ import annotations

import struct

import msgspec
import pytest
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from spl.token.instructions import create_idempotent_associated_token_account, get_associated_token_address

from adapters.solana.instructions import (
    CpmmSwapAccounts,
    CpmmSwapArgs,
    DammV2SwapAccounts,
    DammV2SwapArgs,
    InstructionParseError,
    close_account,
    compute_budget_instructions,
    cpmm_swap_base_input,
    create_associated_token_account_idempotent,
    damm_v2_swap,
    parse_cpmm_swap,
    parse_damm_v2_swap,
    sync_native,
    unwrap_sol,
    wrap_sol,
)
from adapters.solana.programs import (
    ANCHOR_EVENT_IX_TAG,
    ASSOCIATED_TOKEN_PROGRAM_ID,
    COMPUTE_BUDGET_PROGRAM_ID,
    CPMM_SWAP_BASE_INPUT,
    CPMM_SWAP_BASE_OUTPUT,
    CPMM_SWAP_EVENT,
    DAMM_V2_EVENT_AUTHORITY,
    DAMM_V2_EVT_SWAP2,
    DAMM_V2_POOL_AUTHORITY,
    DAMM_V2_SWAP,
    DAMM_V2_SWAP2,
    METEORA_DAMM_V2_PROGRAM_ID,
    RAYDIUM_CPMM_DEVNET_PROGRAM_ID,
    RAYDIUM_CPMM_PROGRAM_ID,
    SPL_TOKEN_ERROR_TABLE,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    WSOL_MINT,
    associated_token_address,
    cpmm_amm_config,
    cpmm_authority,
    decode_program_error,
)


def key(n: int) -> Pubkey:
    return Pubkey(bytes([n]) * 32)


def flags(ix: Instruction) -> list[tuple[Pubkey, bool, bool]]:
    return [(meta.pubkey, meta.is_signer, meta.is_writable) for meta in ix.accounts]


# ---- programs -------------------------------------------------------------------------------------------


def test_swap_discriminators_are_the_programs_bytes() -> None:
    assert CPMM_SWAP_BASE_INPUT == bytes([143, 190, 90, 218, 196, 30, 51, 222])
    assert CPMM_SWAP_BASE_OUTPUT == bytes([55, 217, 98, 86, 163, 74, 180, 173])
    assert DAMM_V2_SWAP == bytes([248, 198, 158, 145, 225, 117, 135, 200])
    assert DAMM_V2_SWAP2 == bytes.fromhex("414b3f4ceb5b5b88")


def test_event_discriminators_are_the_programs_bytes() -> None:
    assert CPMM_SWAP_EVENT == bytes.fromhex("40c6cde8260871e2")
    assert DAMM_V2_EVT_SWAP2 == bytes.fromhex("bd4233a826507599")
    assert ANCHOR_EVENT_IX_TAG == bytes.fromhex("e445a52e51cb9a1d")


def test_damm_v2_fixed_pdas_are_the_known_addresses() -> None:
    assert str(DAMM_V2_POOL_AUTHORITY) == "HLnpSz9h2S4hiLQ43rnSD9XkcUThA7B8hQMKmDaiTLcC"
    assert str(DAMM_V2_EVENT_AUTHORITY) == "3rmHSu74h1ZcmAisVcWerTCiRDQbUrBKmcwptYGjHfet"


def test_cpmm_pdas_are_the_known_mainnet_addresses() -> None:
    assert str(cpmm_authority(RAYDIUM_CPMM_PROGRAM_ID)) == "GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL"
    # the config index is a big-endian u16 in the seed
    assert str(cpmm_amm_config(0, RAYDIUM_CPMM_PROGRAM_ID)) == "D4FPEruKEHrG5TenZ2mpDGEfu1iUvTiqBxvpU8HLBvC2"
    assert cpmm_authority(RAYDIUM_CPMM_DEVNET_PROGRAM_ID) != cpmm_authority(RAYDIUM_CPMM_PROGRAM_ID)


def test_associated_token_address_matches_solana_py() -> None:
    owner = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")
    assert associated_token_address(owner, WSOL_MINT) == get_associated_token_address(owner, WSOL_MINT)
    assert associated_token_address(owner, WSOL_MINT, TOKEN_2022_PROGRAM_ID) == get_associated_token_address(
        owner, WSOL_MINT, TOKEN_2022_PROGRAM_ID
    )


def test_program_errors_decode_with_program_name_and_message() -> None:
    assert decode_program_error(RAYDIUM_CPMM_PROGRAM_ID, 6005) == (
        "Raydium CPMM: ExceededSlippage (6005): Exceeds desired slippage limit"
    )
    assert decode_program_error(METEORA_DAMM_V2_PROGRAM_ID, 6002) == (
        "Meteora DAMM v2: ExceededSlippage (6002): Exceeded slippage tolerance"
    )
    devnet = decode_program_error(RAYDIUM_CPMM_DEVNET_PROGRAM_ID, 6000)
    assert devnet == "Raydium CPMM: NotApproved (6000): Not approved"


def test_framework_codes_below_6000_decode_as_anchor_errors() -> None:
    assert decode_program_error(METEORA_DAMM_V2_PROGRAM_ID, 3005) == (
        "Meteora DAMM v2: AccountNotEnoughKeys (3005): Not enough account keys given to the instruction"
    )
    assert decode_program_error(RAYDIUM_CPMM_PROGRAM_ID, 2505).startswith(
        "Raydium CPMM: RequireGtViolated (2505)"
    )


def test_spl_token_errors_follow_the_enum_order() -> None:
    assert decode_program_error(TOKEN_PROGRAM_ID, 1) == (
        "SPL Token: InsufficientFunds (1): Insufficient funds"
    )
    names = [SPL_TOKEN_ERROR_TABLE[code][0] for code in (0, 3, 4, 17, 18)]
    assert names == [
        "NotRentExempt",
        "MintMismatch",
        "OwnerMismatch",
        "AccountFrozen",
        "MintDecimalsMismatch",
    ]
    assert decode_program_error(TOKEN_2022_PROGRAM_ID, 4).startswith("Token-2022: OwnerMismatch (4)")


def test_unknown_codes_and_programs_are_named_as_unknown() -> None:
    assert decode_program_error(RAYDIUM_CPMM_PROGRAM_ID, 6099) == "Raydium CPMM: unknown error (6099)"
    assert decode_program_error(key(7), 1) == f"{key(7)}: unknown error (1)"


# ---- Raydium CPMM swap ----------------------------------------------------------------------------------

CPMM_ACCOUNTS = CpmmSwapAccounts(*(key(n) for n in range(1, 14)))


def test_cpmm_swap_data_is_discriminator_then_two_little_endian_u64s() -> None:
    ix = cpmm_swap_base_input(RAYDIUM_CPMM_PROGRAM_ID, CPMM_ACCOUNTS, 10_000_000, 19_000_000)
    expected = bytes([143, 190, 90, 218, 196, 30, 51, 222]) + struct.pack("<QQ", 10_000_000, 19_000_000)
    assert bytes(ix.data) == expected
    assert ix.program_id == RAYDIUM_CPMM_PROGRAM_ID


def test_cpmm_swap_accounts_keep_order_and_only_the_payer_signs() -> None:
    ix = cpmm_swap_base_input(RAYDIUM_CPMM_PROGRAM_ID, CPMM_ACCOUNTS, 1, 0)
    writable = {3, 4, 5, 6, 7, 12}  # pool_state, user accounts, vaults, observation
    assert flags(ix) == [(key(i + 1), i == 0, i in writable) for i in range(13)]


def test_cpmm_swap_parses_back_to_its_args_and_accounts() -> None:
    ix = cpmm_swap_base_input(RAYDIUM_CPMM_DEVNET_PROGRAM_ID, CPMM_ACCOUNTS, 10_000_000, 19_000_000)
    parsed = parse_cpmm_swap(ix)
    assert parsed.args == CpmmSwapArgs(10_000_000, 19_000_000)
    assert parsed.accounts == CPMM_ACCOUNTS
    assert parsed.metas[0] == AccountMeta(key(1), True, False) and parsed.remaining == ()


def cpmm_ix(data: bytes, accounts: int = 13) -> Instruction:
    metas = [AccountMeta(key(n), False, True) for n in range(accounts)]
    return Instruction(RAYDIUM_CPMM_PROGRAM_ID, data, metas)


@pytest.mark.parametrize(
    ("data", "accounts", "code"),
    [
        (bytes(7), 13, 100),  # no discriminator
        (CPMM_SWAP_BASE_OUTPUT + bytes(16), 13, 101),  # another instruction
        (CPMM_SWAP_BASE_INPUT + bytes(15), 13, 102),  # arguments cut short
        (CPMM_SWAP_BASE_INPUT + bytes(16), 12, 3005),  # an account missing
        (CPMM_SWAP_BASE_INPUT + bytes(15), 12, 102),  # Anchor reads the arguments first
    ],
)
def test_cpmm_parse_errors_carry_the_anchor_code(data: bytes, accounts: int, code: int) -> None:
    with pytest.raises(InstructionParseError) as failure:
        parse_cpmm_swap(cpmm_ix(data, accounts))
    assert failure.value.code == code


def test_cpmm_parse_ignores_trailing_bytes_like_borsh() -> None:
    parsed = parse_cpmm_swap(cpmm_ix(CPMM_SWAP_BASE_INPUT + struct.pack("<QQ", 5, 4) + b"xyz"))
    assert parsed.args == CpmmSwapArgs(5, 4)


def test_cpmm_parse_error_names_the_anchor_error() -> None:
    with pytest.raises(InstructionParseError, match=r"^AccountNotEnoughKeys \(3005\)"):
        parse_cpmm_swap(cpmm_ix(CPMM_SWAP_BASE_INPUT + bytes(16), 3))


# ---- Meteora DAMM v2 swap -------------------------------------------------------------------------------

DAMM_ACCOUNTS = DammV2SwapAccounts(*(key(n) for n in range(20, 30)))


def test_damm_v2_swap_data_is_discriminator_then_two_little_endian_u64s() -> None:
    ix = damm_v2_swap(DAMM_ACCOUNTS, 10**9, 149_000_000)
    assert bytes(ix.data) == bytes.fromhex("f8c69e91e17587c8") + struct.pack("<QQ", 10**9, 149_000_000)
    assert ix.program_id == METEORA_DAMM_V2_PROGRAM_ID


def test_damm_v2_swap_has_fourteen_accounts_with_the_program_for_an_absent_referral() -> None:
    ix = damm_v2_swap(DAMM_ACCOUNTS, 1, 0)
    assert flags(ix) == [
        (DAMM_V2_POOL_AUTHORITY, False, False),
        (key(20), False, True),  # pool
        (key(21), False, True),  # input token account
        (key(22), False, True),  # output token account
        (key(23), False, True),  # token A vault
        (key(24), False, True),  # token B vault
        (key(25), False, False),  # token A mint
        (key(26), False, False),  # token B mint
        (key(27), True, False),  # payer
        (key(28), False, False),  # token A program
        (key(29), False, False),  # token B program
        (METEORA_DAMM_V2_PROGRAM_ID, False, False),  # no referral
        (DAMM_V2_EVENT_AUTHORITY, False, False),
        (METEORA_DAMM_V2_PROGRAM_ID, False, False),
    ]


def test_damm_v2_swap_referral_account_is_writable() -> None:
    ix = damm_v2_swap(msgspec.structs.replace(DAMM_ACCOUNTS, referral_token_account=key(31)), 1, 0)
    assert flags(ix)[11] == (key(31), False, True)


def test_damm_v2_swap_parses_back_with_the_absent_referral_as_none() -> None:
    parsed = parse_damm_v2_swap(damm_v2_swap(DAMM_ACCOUNTS, 10**9, 7))
    assert parsed.args == DammV2SwapArgs(10**9, 7, swap_mode=0)
    assert parsed.accounts == DAMM_ACCOUNTS and parsed.accounts.referral_token_account is None
    assert not parsed.is_swap2


def test_damm_v2_parse_keeps_the_rate_limiter_sysvar_as_remaining() -> None:
    ix = damm_v2_swap(DAMM_ACCOUNTS, 5, 0)
    sysvar = AccountMeta(Pubkey.from_string("Sysvar1nstructions1111111111111111111111111"), False, False)
    parsed = parse_damm_v2_swap(Instruction(ix.program_id, bytes(ix.data), [*ix.accounts, sysvar]))
    assert parsed.remaining == (sysvar,)


def test_damm_v2_swap2_parses_its_mode_byte() -> None:
    ix = damm_v2_swap(DAMM_ACCOUNTS, 1, 0)
    swap2 = Instruction(ix.program_id, DAMM_V2_SWAP2 + struct.pack("<QQB", 100, 90, 2), ix.accounts)
    parsed = parse_damm_v2_swap(swap2)
    assert parsed.is_swap2 and parsed.args == DammV2SwapArgs(100, 90, 2)


def damm_ix(data: bytes, accounts: int = 14) -> Instruction:
    metas = [AccountMeta(key(n), False, True) for n in range(accounts)]
    return Instruction(METEORA_DAMM_V2_PROGRAM_ID, data, metas)


@pytest.mark.parametrize(
    ("data", "accounts", "code"),
    [
        (bytes(3), 14, 100),
        (CPMM_SWAP_BASE_INPUT + bytes(16), 14, 101),
        (DAMM_V2_SWAP + bytes(15), 14, 102),
        (DAMM_V2_SWAP2 + bytes(16), 14, 102),  # swap2 needs its mode byte too
        (DAMM_V2_SWAP + bytes(16), 13, 3005),
        (DAMM_V2_SWAP + bytes(15), 13, 3005),  # the fast path counts accounts before reading arguments
    ],
)
def test_damm_v2_parse_errors_carry_the_anchor_code(data: bytes, accounts: int, code: int) -> None:
    with pytest.raises(InstructionParseError) as failure:
        parse_damm_v2_swap(damm_ix(data, accounts))
    assert failure.value.code == code


def test_parsers_refuse_an_instruction_for_another_program() -> None:
    with pytest.raises(ValueError):
        parse_damm_v2_swap(cpmm_ix(DAMM_V2_SWAP + bytes(16)))
    with pytest.raises(ValueError):
        parse_cpmm_swap(damm_ix(CPMM_SWAP_BASE_INPUT + bytes(16)))


# ---- wrapped SOL, token housekeeping, compute budget ----------------------------------------------------

OWNER = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")
WSOL_ATA = get_associated_token_address(OWNER, WSOL_MINT)


def test_create_idempotent_ata_is_data_1_with_six_accounts_in_order() -> None:
    ix = create_associated_token_account_idempotent(OWNER, OWNER, WSOL_MINT)
    assert ix.program_id == ASSOCIATED_TOKEN_PROGRAM_ID and bytes(ix.data) == b"\x01"
    assert flags(ix) == [
        (OWNER, True, True),  # funding account
        (WSOL_ATA, False, True),
        (OWNER, False, False),  # wallet
        (WSOL_MINT, False, False),
        (SYSTEM_PROGRAM_ID, False, False),
        (TOKEN_PROGRAM_ID, False, False),
    ]
    assert ix == create_idempotent_associated_token_account(OWNER, OWNER, WSOL_MINT)


def test_wrap_sol_creates_funds_and_syncs_the_wsol_account() -> None:
    create, transfer, sync = wrap_sol(OWNER, 1_500_000_000)
    assert bytes(create.data) == b"\x01"
    assert transfer.program_id == SYSTEM_PROGRAM_ID
    assert bytes(transfer.data) == struct.pack("<IQ", 2, 1_500_000_000)  # System Transfer
    assert flags(transfer) == [(OWNER, True, True), (WSOL_ATA, False, True)]
    assert sync == sync_native(WSOL_ATA)
    assert (sync.program_id, bytes(sync.data)) == (TOKEN_PROGRAM_ID, b"\x11")
    assert flags(sync) == [(WSOL_ATA, False, True)]


def test_wrap_sol_lets_another_account_pay_for_the_new_account() -> None:
    create = wrap_sol(OWNER, 1, payer=key(9))[0]
    assert flags(create)[0] == (key(9), True, True) and flags(create)[2] == (OWNER, False, False)


def test_unwrap_sol_closes_the_wsol_account_to_its_owner() -> None:
    (close,) = unwrap_sol(OWNER)
    assert close == close_account(WSOL_ATA, OWNER, OWNER)
    assert (close.program_id, bytes(close.data)) == (TOKEN_PROGRAM_ID, b"\x09")
    assert flags(close) == [(WSOL_ATA, False, True), (OWNER, False, True), (OWNER, True, False)]


def test_compute_budget_encodes_limit_as_u32_and_price_as_u64() -> None:
    limit, price = compute_budget_instructions(200_000, 25_000)
    assert (limit.program_id, price.program_id) == (COMPUTE_BUDGET_PROGRAM_ID, COMPUTE_BUDGET_PROGRAM_ID)
    assert bytes(limit.data) == b"\x02" + struct.pack("<I", 200_000)
    assert bytes(price.data) == b"\x03" + struct.pack("<Q", 25_000)
    assert limit.accounts == [] and price.accounts == []
    (only_price,) = compute_budget_instructions(micro_lamports_per_unit=1)
    assert bytes(only_price.data) == b"\x03" + struct.pack("<Q", 1)

"""Instructions the engine sends, and parsers for the two swaps the local chain emulates.

Builders: Raydium CPMM `swap_base_input` (13 accounts), Meteora DAMM v2 `swap` (14
accounts; an absent referral account is passed as the program id, Anchor's
convention for a missing optional account), wrapping SOL (create the wSOL
associated token account idempotently, transfer lamports into it, SyncNative) and
unwrapping it (CloseAccount), and the compute budget.

Parsers: `parse_cpmm_swap` and `parse_damm_v2_swap` give the arguments and the
accounts by name, or raise `InstructionParseError` carrying the Anchor error code
the program would fail with. They check only what the programs check before their
handlers read any account (instruction data and account count, in the programs'
own order); signer/writable flags and account contents are checked by the caller
in the program's order, from `metas`.
"""

from __future__ import annotations

import struct

import msgspec
from solders import compute_budget, system_program
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from adapters.solana.programs import (
    ANCHOR_ERROR_TABLE,
    ASSOCIATED_TOKEN_PROGRAM_ID,
    CPMM_SWAP_BASE_INPUT,
    DAMM_V2_EVENT_AUTHORITY,
    DAMM_V2_POOL_AUTHORITY,
    DAMM_V2_SWAP,
    DAMM_V2_SWAP2,
    METEORA_DAMM_V2_PROGRAM_ID,
    RAYDIUM_CPMM_PROGRAM_IDS,
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    WSOL_MINT,
    associated_token_address,
)

CPMM_SWAP_ACCOUNTS = 13
DAMM_V2_SWAP_ACCOUNTS = 14
TOKEN_IX_CLOSE_ACCOUNT = 9
TOKEN_IX_SYNC_NATIVE = 17
ATA_IX_CREATE_IDEMPOTENT = 1

_SWAP_ARGS = struct.Struct("<QQ")
_SWAP2_ARGS = struct.Struct("<QQB")


class InstructionParseError(Exception):
    """The program would reject the instruction before its handler: `code` is Anchor's."""

    def __init__(self, code: int, detail: str) -> None:
        self.code = code
        self.name, message = ANCHOR_ERROR_TABLE[code]
        super().__init__(f"{self.name} ({code}): {message}: {detail}")


# ---- Raydium CPMM ----------------------------------------------------------------------------------------


class CpmmSwapAccounts(msgspec.Struct, frozen=True):
    """The 13 accounts of `swap_base_input`, in instruction order."""

    payer: Pubkey
    authority: Pubkey
    amm_config: Pubkey
    pool_state: Pubkey
    input_token_account: Pubkey
    output_token_account: Pubkey
    input_vault: Pubkey
    output_vault: Pubkey
    input_token_program: Pubkey
    output_token_program: Pubkey
    input_token_mint: Pubkey
    output_token_mint: Pubkey
    observation_state: Pubkey


# (is_signer, is_writable) per account, as the program's IDL marks them.
_CPMM_FLAGS = (
    (True, False),  # payer: signs and authorizes the input transfer
    (False, False),  # authority
    (False, False),  # amm_config
    (False, True),  # pool_state
    (False, True),  # input_token_account
    (False, True),  # output_token_account
    (False, True),  # input_vault
    (False, True),  # output_vault
    (False, False),  # input_token_program
    (False, False),  # output_token_program
    (False, False),  # input_token_mint
    (False, False),  # output_token_mint
    (False, True),  # observation_state
)


class CpmmSwapArgs(msgspec.Struct, frozen=True):
    amount_in: int
    minimum_amount_out: int


class ParsedCpmmSwap(msgspec.Struct, frozen=True):
    args: CpmmSwapArgs
    accounts: CpmmSwapAccounts
    metas: tuple[AccountMeta, ...]
    remaining: tuple[AccountMeta, ...]


def cpmm_swap_base_input(
    program_id: Pubkey, accounts: CpmmSwapAccounts, amount_in: int, minimum_amount_out: int
) -> Instruction:
    """Raydium CPMM `swap_base_input`: discriminator, then amount_in and minimum_amount_out (u64 LE)."""
    keys = msgspec.structs.astuple(accounts)
    metas = [
        AccountMeta(key, signer, writable) for key, (signer, writable) in zip(keys, _CPMM_FLAGS, strict=True)
    ]
    data = CPMM_SWAP_BASE_INPUT + _SWAP_ARGS.pack(amount_in, minimum_amount_out)
    return Instruction(program_id, data, metas)


def parse_cpmm_swap(ix: Instruction) -> ParsedCpmmSwap:
    """A `swap_base_input` sent to a CPMM program, as Anchor dispatches it: the discriminator
    (100, 101), then the arguments (102), then the accounts (3005)."""
    if ix.program_id not in RAYDIUM_CPMM_PROGRAM_IDS:
        raise ValueError(f"{ix.program_id} is not a Raydium CPMM program")
    data = bytes(ix.data)
    if len(data) < 8:
        raise InstructionParseError(100, f"{len(data)} bytes of data")
    if data[:8] != CPMM_SWAP_BASE_INPUT:
        raise InstructionParseError(101, f"discriminator {data[:8].hex()} is not swap_base_input")
    if len(data) < 8 + _SWAP_ARGS.size:
        raise InstructionParseError(102, f"swap_base_input needs 16 bytes of arguments, got {len(data) - 8}")
    # Borsh reads what it needs and ignores trailing bytes, as the program does.
    amount_in, minimum_amount_out = _SWAP_ARGS.unpack_from(data, 8)
    metas = tuple(ix.accounts)
    if len(metas) < CPMM_SWAP_ACCOUNTS:
        raise InstructionParseError(3005, f"swap_base_input needs 13 accounts, got {len(metas)}")
    accounts = CpmmSwapAccounts(*(meta.pubkey for meta in metas[:CPMM_SWAP_ACCOUNTS]))
    return ParsedCpmmSwap(
        CpmmSwapArgs(amount_in, minimum_amount_out),
        accounts,
        metas[:CPMM_SWAP_ACCOUNTS],
        metas[CPMM_SWAP_ACCOUNTS:],
    )


# ---- Meteora DAMM v2 -------------------------------------------------------------------------------------


class DammV2SwapAccounts(msgspec.Struct, frozen=True):
    """The accounts of `swap`/`swap2` by name. `referral_token_account` None means absent (the
    program id in its slot); the last three default to the program's fixed addresses."""

    pool: Pubkey
    input_token_account: Pubkey
    output_token_account: Pubkey
    token_a_vault: Pubkey
    token_b_vault: Pubkey
    token_a_mint: Pubkey
    token_b_mint: Pubkey
    payer: Pubkey
    token_a_program: Pubkey
    token_b_program: Pubkey
    referral_token_account: Pubkey | None = None
    pool_authority: Pubkey = DAMM_V2_POOL_AUTHORITY
    event_authority: Pubkey = DAMM_V2_EVENT_AUTHORITY
    program: Pubkey = METEORA_DAMM_V2_PROGRAM_ID


class DammV2SwapArgs(msgspec.Struct, frozen=True):
    """The program's SwapParameters2 (`swap` is ExactIn, mode 0): for ExactIn and PartialFill
    amount_0 is the amount in and amount_1 the minimum out; for ExactOut (2) they are the
    amount out and the maximum in."""

    amount_0: int
    amount_1: int
    swap_mode: int = 0


class ParsedDammV2Swap(msgspec.Struct, frozen=True):
    args: DammV2SwapArgs
    accounts: DammV2SwapAccounts
    is_swap2: bool
    metas: tuple[AccountMeta, ...]
    remaining: tuple[AccountMeta, ...]


def damm_v2_swap(accounts: DammV2SwapAccounts, amount_in: int, minimum_amount_out: int) -> Instruction:
    """Meteora DAMM v2 `swap`: discriminator, then amount_in and minimum_amount_out (u64 LE)."""
    referral = accounts.referral_token_account
    metas = [
        AccountMeta(accounts.pool_authority, False, False),
        AccountMeta(accounts.pool, False, True),
        AccountMeta(accounts.input_token_account, False, True),
        AccountMeta(accounts.output_token_account, False, True),
        AccountMeta(accounts.token_a_vault, False, True),
        AccountMeta(accounts.token_b_vault, False, True),
        AccountMeta(accounts.token_a_mint, False, False),
        AccountMeta(accounts.token_b_mint, False, False),
        AccountMeta(accounts.payer, True, False),
        AccountMeta(accounts.token_a_program, False, False),
        AccountMeta(accounts.token_b_program, False, False),
        # The referral account receives its fee share; an absent one is the read-only program id.
        AccountMeta(METEORA_DAMM_V2_PROGRAM_ID, False, False)
        if referral is None
        else AccountMeta(referral, False, True),
        AccountMeta(accounts.event_authority, False, False),
        AccountMeta(accounts.program, False, False),
    ]
    data = DAMM_V2_SWAP + _SWAP_ARGS.pack(amount_in, minimum_amount_out)
    return Instruction(METEORA_DAMM_V2_PROGRAM_ID, data, metas)


def parse_damm_v2_swap(ix: Instruction) -> ParsedDammV2Swap:
    """A `swap` or `swap2` as the program's fast path takes it: the account count (3005) is
    checked before the arguments (102); other data falls to Anchor (100, 101)."""
    if ix.program_id != METEORA_DAMM_V2_PROGRAM_ID:
        raise ValueError(f"{ix.program_id} is not the Meteora DAMM v2 program")
    data = bytes(ix.data)
    is_swap2 = data[:8] == DAMM_V2_SWAP2
    if data[:8] != DAMM_V2_SWAP and not is_swap2:
        if len(data) < 8:
            raise InstructionParseError(100, f"{len(data)} bytes of data")
        raise InstructionParseError(101, f"discriminator {data[:8].hex()} is not swap or swap2")
    metas = tuple(ix.accounts)
    if len(metas) < DAMM_V2_SWAP_ACCOUNTS:
        raise InstructionParseError(3005, f"swap needs 14 accounts, got {len(metas)}")
    layout = _SWAP2_ARGS if is_swap2 else _SWAP_ARGS
    if len(data) < 8 + layout.size:
        raise InstructionParseError(102, f"needs {layout.size} bytes of arguments, got {len(data) - 8}")
    if is_swap2:
        args = DammV2SwapArgs(*_SWAP2_ARGS.unpack_from(data, 8))
    else:
        args = DammV2SwapArgs(*_SWAP_ARGS.unpack_from(data, 8))
    keys = [meta.pubkey for meta in metas[:DAMM_V2_SWAP_ACCOUNTS]]
    referral = None if keys[11] == METEORA_DAMM_V2_PROGRAM_ID else keys[11]
    accounts = DammV2SwapAccounts(
        pool=keys[1],
        input_token_account=keys[2],
        output_token_account=keys[3],
        token_a_vault=keys[4],
        token_b_vault=keys[5],
        token_a_mint=keys[6],
        token_b_mint=keys[7],
        payer=keys[8],
        token_a_program=keys[9],
        token_b_program=keys[10],
        referral_token_account=referral,
        pool_authority=keys[0],
        event_authority=keys[12],
        program=keys[13],
    )
    return ParsedDammV2Swap(
        args, accounts, is_swap2, metas[:DAMM_V2_SWAP_ACCOUNTS], metas[DAMM_V2_SWAP_ACCOUNTS:]
    )


# ---- wrapped SOL and token housekeeping ------------------------------------------------------------------


def create_associated_token_account_idempotent(
    payer: Pubkey, owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID
) -> Instruction:
    """ATA program instruction 1: create the owner's account for `mint` unless it exists."""
    metas = [
        AccountMeta(payer, True, True),
        AccountMeta(associated_token_address(owner, mint, token_program), False, True),
        AccountMeta(owner, False, False),
        AccountMeta(mint, False, False),
        AccountMeta(SYSTEM_PROGRAM_ID, False, False),
        AccountMeta(token_program, False, False),
    ]
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([ATA_IX_CREATE_IDEMPOTENT]), metas)


def sync_native(account: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    """Token instruction 17: set a wSOL account's token amount from its lamports."""
    return Instruction(token_program, bytes([TOKEN_IX_SYNC_NATIVE]), [AccountMeta(account, False, True)])


def close_account(
    account: Pubkey, destination: Pubkey, owner: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID
) -> Instruction:
    """Token instruction 9: close `account`, sending its lamports (all of them, for wSOL) to `destination`."""
    metas = [
        AccountMeta(account, False, True),
        AccountMeta(destination, False, True),
        AccountMeta(owner, True, False),
    ]
    return Instruction(token_program, bytes([TOKEN_IX_CLOSE_ACCOUNT]), metas)


def wrap_sol(owner: Pubkey, lamports: int, payer: Pubkey | None = None) -> list[Instruction]:
    """Put `lamports` into the owner's wSOL associated account: create it if needed, fund it, sync."""
    account = associated_token_address(owner, WSOL_MINT)
    return [
        create_associated_token_account_idempotent(payer or owner, owner, WSOL_MINT),
        system_program.transfer(
            system_program.TransferParams(from_pubkey=owner, to_pubkey=account, lamports=lamports)
        ),
        sync_native(account),
    ]


def unwrap_sol(owner: Pubkey, destination: Pubkey | None = None) -> list[Instruction]:
    """Close the owner's wSOL associated account, returning its SOL to `destination` (the owner)."""
    return [close_account(associated_token_address(owner, WSOL_MINT), destination or owner, owner)]


def compute_budget_instructions(
    unit_limit: int | None = None, micro_lamports_per_unit: int | None = None
) -> list[Instruction]:
    """SetComputeUnitLimit (data [2] + u32) and SetComputeUnitPrice ([3] + u64), either or both."""
    instructions = []
    if unit_limit is not None:
        instructions.append(compute_budget.set_compute_unit_limit(unit_limit))
    if micro_lamports_per_unit is not None:
        instructions.append(compute_budget.set_compute_unit_price(micro_lamports_per_unit))
    return instructions

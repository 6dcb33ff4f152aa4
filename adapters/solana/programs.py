"""The Solana programs the engine talks to: their ids, PDAs, Anchor discriminators and errors.

Program ids are from the programs' `declare_id!` (raydium-cp-swap, damm-v2) and the
SPL programs. Discriminators are computed here from their Anchor names (the first
8 bytes of sha256 of `global:<ix>`, `account:<Type>` or `event:<Event>`) rather than
pasted, and the tests pin them to the bytes the programs use. Error tables map a
custom error code to (name, message): the programs' own codes start at 6000, the
Anchor framework's are below, and the SPL Token program's are 0-19.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from solders.pubkey import Pubkey

from domain.curves.errors import ANCHOR_REQUIRE_ERRORS, METEORA_DAMM_V2_ERRORS, RAYDIUM_CPMM_ERRORS

# ---- program ids and well-known accounts -----------------------------------------------------------------
RAYDIUM_CPMM_PROGRAM_ID = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
RAYDIUM_CPMM_DEVNET_PROGRAM_ID = Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb")
METEORA_DAMM_V2_PROGRAM_ID = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
WSOL_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")

RAYDIUM_CPMM_PROGRAM_IDS = frozenset({RAYDIUM_CPMM_PROGRAM_ID, RAYDIUM_CPMM_DEVNET_PROGRAM_ID})

# ---- discriminators --------------------------------------------------------------------------------------


def anchor_discriminator(preimage: str) -> bytes:
    """Anchor's 8-byte tag: sha256 of e.g. `global:swap` or `account:Pool`, first 8 bytes."""
    return hashlib.sha256(preimage.encode()).digest()[:8]


CPMM_SWAP_BASE_INPUT = anchor_discriminator("global:swap_base_input")
CPMM_SWAP_BASE_OUTPUT = anchor_discriminator("global:swap_base_output")
CPMM_POOL_STATE = anchor_discriminator("account:PoolState")
CPMM_AMM_CONFIG = anchor_discriminator("account:AmmConfig")
CPMM_OBSERVATION_STATE = anchor_discriminator("account:ObservationState")
CPMM_SWAP_EVENT = anchor_discriminator("event:SwapEvent")

DAMM_V2_SWAP = anchor_discriminator("global:swap")
DAMM_V2_SWAP2 = anchor_discriminator("global:swap2")
DAMM_V2_POOL = anchor_discriminator("account:Pool")
DAMM_V2_EVT_SWAP2 = anchor_discriminator("event:EvtSwap2")
# Anchor's event self-CPI prefix: the little-endian bytes of sha256("anchor:event")[:8].
ANCHOR_EVENT_IX_TAG = anchor_discriminator("anchor:event")[::-1]

# ---- PDAs ------------------------------------------------------------------------------------------------
CPMM_AUTH_SEED = b"vault_and_lp_mint_auth_seed"


def find_pda(seeds: Sequence[bytes], program_id: Pubkey) -> tuple[Pubkey, int]:
    """The program-derived address for `seeds` and its bump (for callers that store the bump)."""
    return Pubkey.find_program_address(list(seeds), program_id)


def cpmm_authority(program_id: Pubkey) -> Pubkey:
    """The one authority PDA of all CPMM pools (owns the vaults; its bump is `pool.auth_bump`)."""
    return find_pda([CPMM_AUTH_SEED], program_id)[0]


def cpmm_amm_config(index: int, program_id: Pubkey) -> Pubkey:
    """An AmmConfig's address: the index is a big-endian u16 in the seed."""
    return find_pda([b"amm_config", index.to_bytes(2, "big")], program_id)[0]


def cpmm_pool(amm_config: Pubkey, token_0_mint: Pubkey, token_1_mint: Pubkey, program_id: Pubkey) -> Pubkey:
    """The pool PDA (a pool may also live at a keypair address: read it, never assume it)."""
    return find_pda([b"pool", bytes(amm_config), bytes(token_0_mint), bytes(token_1_mint)], program_id)[0]


def cpmm_lp_mint(pool: Pubkey, program_id: Pubkey) -> Pubkey:
    return find_pda([b"pool_lp_mint", bytes(pool)], program_id)[0]


def cpmm_vault(pool: Pubkey, mint: Pubkey, program_id: Pubkey) -> Pubkey:
    return find_pda([b"pool_vault", bytes(pool), bytes(mint)], program_id)[0]


def cpmm_observation(pool: Pubkey, program_id: Pubkey) -> Pubkey:
    return find_pda([b"observation", bytes(pool)], program_id)[0]


def damm_v2_pool_authority() -> Pubkey:
    """The DAMM v2 pool authority (`HLnpSz9h…`), owner of every vault."""
    return find_pda([b"pool_authority"], METEORA_DAMM_V2_PROGRAM_ID)[0]


def damm_v2_event_authority() -> Pubkey:
    """The Anchor event-CPI authority of DAMM v2 (`3rmHSu74…`)."""
    return find_pda([b"__event_authority"], METEORA_DAMM_V2_PROGRAM_ID)[0]


def damm_v2_token_vault(mint: Pubkey, pool: Pubkey) -> Pubkey:
    """Where real pools keep a token (the swap only checks the pool's has_one, not this)."""
    return find_pda([b"token_vault", bytes(mint), bytes(pool)], METEORA_DAMM_V2_PROGRAM_ID)[0]


def damm_v2_pool(config: Pubkey, mint_a: Pubkey, mint_b: Pubkey) -> Pubkey:
    """The pool PDA: the larger mint's bytes come first in the seeds."""
    first, second = sorted((bytes(mint_a), bytes(mint_b)), reverse=True)
    return find_pda([b"pool", bytes(config), first, second], METEORA_DAMM_V2_PROGRAM_ID)[0]


def associated_token_address(owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID) -> Pubkey:
    """The owner's associated token account for `mint`."""
    return find_pda([bytes(owner), bytes(token_program), bytes(mint)], ASSOCIATED_TOKEN_PROGRAM_ID)[0]


DAMM_V2_POOL_AUTHORITY = damm_v2_pool_authority()
DAMM_V2_EVENT_AUTHORITY = damm_v2_event_authority()

# ---- errors ----------------------------------------------------------------------------------------------
RAYDIUM_CPMM_ERROR_TABLE: Mapping[int, tuple[str, str]] = RAYDIUM_CPMM_ERRORS.entries
METEORA_DAMM_V2_ERROR_TABLE: Mapping[int, tuple[str, str]] = METEORA_DAMM_V2_ERRORS.entries

# anchor-lang `error.rs` (the framework codes a swap can end in; both programs are Anchor ≥ 0.31).
ANCHOR_ERROR_TABLE: Mapping[int, tuple[str, str]] = {
    100: ("InstructionMissing", "Instruction discriminator not provided"),
    101: ("InstructionFallbackNotFound", "Fallback functions are not supported"),
    102: ("InstructionDidNotDeserialize", "The program could not deserialize the given instruction"),
    103: ("InstructionDidNotSerialize", "The program could not serialize the given instruction"),
    2000: ("ConstraintMut", "A mut constraint was violated"),
    2001: ("ConstraintHasOne", "A has one constraint was violated"),
    2002: ("ConstraintSigner", "A signer constraint was violated"),
    2003: ("ConstraintRaw", "A raw constraint was violated"),
    2004: ("ConstraintOwner", "An owner constraint was violated"),
    2006: ("ConstraintSeeds", "A seeds constraint was violated"),
    2012: ("ConstraintAddress", "An address constraint was violated"),
    2014: ("ConstraintTokenMint", "A token mint constraint was violated"),
    2015: ("ConstraintTokenOwner", "A token owner constraint was violated"),
    2021: ("ConstraintTokenTokenProgram", "A token account token program constraint was violated"),
    2500: ("RequireViolated", "A require expression was violated"),
    **ANCHOR_REQUIRE_ERRORS.entries,
    3000: ("AccountDiscriminatorAlreadySet", "The account discriminator was already set on this account"),
    3001: ("AccountDiscriminatorNotFound", "No discriminator was found on the account"),
    3002: ("AccountDiscriminatorMismatch", "Account discriminator did not match what was expected"),
    3003: ("AccountDidNotDeserialize", "Failed to deserialize the account"),
    3004: ("AccountDidNotSerialize", "Failed to serialize the account"),
    3005: ("AccountNotEnoughKeys", "Not enough account keys given to the instruction"),
    3006: ("AccountNotMutable", "The given account is not mutable"),
    3007: ("AccountOwnedByWrongProgram", "The given account is owned by a different program than expected"),
    3008: ("InvalidProgramId", "Program ID was not as expected"),
    3009: ("InvalidProgramExecutable", "Program account is not executable"),
    3010: ("AccountNotSigner", "The given account did not sign"),
    3011: ("AccountNotSystemOwned", "The given account is not owned by the system program"),
    3012: ("AccountNotInitialized", "The program expected this account to be already initialized"),
}

# spl-token `TokenError` in declaration order (`#[error]` texts); Token-2022 shares 0-19.
SPL_TOKEN_ERROR_TABLE: Mapping[int, tuple[str, str]] = {
    0: ("NotRentExempt", "Lamport balance below rent-exempt threshold"),
    1: ("InsufficientFunds", "Insufficient funds"),
    2: ("InvalidMint", "Invalid Mint"),
    3: ("MintMismatch", "Account not associated with this Mint"),
    4: ("OwnerMismatch", "Owner does not match"),
    5: ("FixedSupply", "Fixed supply"),
    6: ("AlreadyInUse", "Already in use"),
    7: ("InvalidNumberOfProvidedSigners", "Invalid number of provided signers"),
    8: ("InvalidNumberOfRequiredSigners", "Invalid number of required signers"),
    9: ("UninitializedState", "State is unititialized"),  # sic: the program's own spelling
    10: ("NativeNotSupported", "Instruction does not support native tokens"),
    11: ("NonNativeHasBalance", "Non-native account can only be closed if its balance is zero"),
    12: ("InvalidInstruction", "Invalid instruction"),
    13: ("InvalidState", "State is invalid for requested operation"),
    14: ("Overflow", "Operation overflowed"),
    15: ("AuthorityTypeNotSupported", "Account does not support specified authority type"),
    16: ("MintCannotFreeze", "This token mint cannot freeze accounts"),
    17: ("AccountFrozen", "Account is frozen"),
    18: ("MintDecimalsMismatch", "The provided decimals value different from the Mint decimals"),
    19: ("NonNativeNotSupported", "Instruction does not support non-native tokens"),
}

_PROGRAM_NAMES: Mapping[Pubkey, str] = {
    RAYDIUM_CPMM_PROGRAM_ID: "Raydium CPMM",
    RAYDIUM_CPMM_DEVNET_PROGRAM_ID: "Raydium CPMM",
    METEORA_DAMM_V2_PROGRAM_ID: "Meteora DAMM v2",
    TOKEN_PROGRAM_ID: "SPL Token",
    TOKEN_2022_PROGRAM_ID: "Token-2022",
}


def _error_entry(program_id: Pubkey, code: int) -> tuple[str, str] | None:
    if program_id in RAYDIUM_CPMM_PROGRAM_IDS:
        table = RAYDIUM_CPMM_ERROR_TABLE if code >= 6000 else ANCHOR_ERROR_TABLE
    elif program_id == METEORA_DAMM_V2_PROGRAM_ID:
        table = METEORA_DAMM_V2_ERROR_TABLE if code >= 6000 else ANCHOR_ERROR_TABLE
    elif program_id in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
        table = SPL_TOKEN_ERROR_TABLE
    else:
        return None
    return table.get(code)


def decode_program_error(program_id: Pubkey, code: int) -> str:
    """A custom error as a person reads it: "Raydium CPMM: ExceededSlippage (6005): Exceeds …"."""
    program = _PROGRAM_NAMES.get(program_id, str(program_id))
    entry = _error_entry(program_id, code)
    if entry is None:
        return f"{program}: unknown error ({code})"
    name, message = entry
    return f"{program}: {name} ({code}): {message}"

"""The account checks Meteora DAMM v2's swap fast path runs (`SwapCtx::validate_p_accounts`).

The program serves `swap` and `swap2` through a pinocchio entrypoint that checks the
accounts by hand, one after the other, in this order (release 0.2.1,
`instructions/swap/ix_swap.rs` and `utils/p_helper.rs`):

1. pool_authority == `HLnpSz9h…` → ConstraintAddress 2012
2. pool: owned by the program → AccountOwnedByWrongProgram 3007; writable →
   AccountNotMutable 3006; a discriminator → AccountDiscriminatorNotFound 3001 /
   AccountDiscriminatorMismatch 3002
3. pool.token_a_vault / token_b_vault == accounts 4 / 5 → ConstraintHasOne 2001
4. input and output token accounts, then each vault: writable 3006, not an empty
   system account (AccountNotInitialized 3012), owned by SPL Token or Token-2022
   3007; a vault's owner == its token program → ConstraintTokenTokenProgram 2021
5. each mint == its vault's mint (vault bytes 0..32) → ConstraintTokenMint 2014, and
   owned by a token program → 3007
6. payer signed → AccountNotSigner 3010
7. both token programs are SPL Token or Token-2022 → InvalidProgramId 3008
8. event_authority == PDA("__event_authority") → ConstraintSeeds 2006
9. a referral account (any key but the program id) passes the checks of step 4

The pool's own mints are never compared with the mint accounts: the link is the
vaults' mint. Token accounts are not unpacked here; the token program refuses a bad
one in the transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.account import Account
from solders.pubkey import Pubkey

from adapters.localnet.anchor_program import AnchorErrors
from adapters.localnet.emulation import InstructionContext
from adapters.localnet.token_accounts import SYSTEM_PROGRAM_ID, TOKEN_PROGRAMS
from adapters.solana.instructions import ParsedDammV2Swap
from adapters.solana.layout_fields import LayoutError
from adapters.solana.meteora_damm_v2_layouts import DAMM_V2_POOL_SIZE, DammV2PoolAccount, decode_damm_v2_pool
from adapters.solana.programs import (
    DAMM_V2_EVENT_AUTHORITY,
    DAMM_V2_POOL,
    DAMM_V2_POOL_AUTHORITY,
    METEORA_DAMM_V2_ERROR_TABLE,
    METEORA_DAMM_V2_PROGRAM_ID,
)

DAMM_V2_ERRORS = AnchorErrors(METEORA_DAMM_V2_ERROR_TABLE)

_CONSTRAINT_HAS_ONE = 2001
_CONSTRAINT_SEEDS = 2006
_CONSTRAINT_ADDRESS = 2012
_CONSTRAINT_TOKEN_MINT = 2014
_CONSTRAINT_TOKEN_TOKEN_PROGRAM = 2021
_DISCRIMINATOR_NOT_FOUND = 3001
_DISCRIMINATOR_MISMATCH = 3002
_DID_NOT_DESERIALIZE = 3003
_ACCOUNT_NOT_MUTABLE = 3006
_ACCOUNT_OWNED_BY_WRONG_PROGRAM = 3007
_INVALID_PROGRAM_ID = 3008
_ACCOUNT_NOT_SIGNER = 3010
_ACCOUNT_NOT_INITIALIZED = 3012


@dataclass(frozen=True)
class CheckedDammV2Swap:
    """What the handler reads, after every check passed. `input_mint_bytes` is the first 32
    bytes of the input token account (the program's direction test)."""

    parsed: ParsedDammV2Swap
    pool_account: Account
    pool: DammV2PoolAccount
    token_a_mint: Account
    token_b_mint: Account
    token_a_vault: Account
    token_b_vault: Account
    input_token: Account

    @property
    def has_referral(self) -> bool:
        return self.parsed.accounts.referral_token_account is not None


def _mut_token_account(ctx: InstructionContext, key: Pubkey) -> Account:
    """`validate_mut_token_account`: writable, initialized, owned by a token program."""
    if not ctx.is_writable(key):
        raise DAMM_V2_ERRORS.fail(ctx, _ACCOUNT_NOT_MUTABLE)
    account = ctx.get(key)
    if account is None or (account.owner == SYSTEM_PROGRAM_ID and account.lamports == 0):
        raise DAMM_V2_ERRORS.fail(ctx, _ACCOUNT_NOT_INITIALIZED)
    if account.owner not in TOKEN_PROGRAMS:
        raise DAMM_V2_ERRORS.fail(ctx, _ACCOUNT_OWNED_BY_WRONG_PROGRAM)
    return account


def _vault_mint(ctx: InstructionContext, vault: Account) -> Pubkey:
    if len(vault.data) < 32:
        raise DAMM_V2_ERRORS.fail(ctx, _DID_NOT_DESERIALIZE)
    return Pubkey.from_bytes(vault.data[:32])


def _pool(ctx: InstructionContext, key: Pubkey) -> tuple[Account, DammV2PoolAccount]:
    """`p_load_mut_checked::<Pool>`: owner, writable, discriminator, then the zero-copy cast."""
    account = ctx.get(key)
    if account is None or account.owner != METEORA_DAMM_V2_PROGRAM_ID:
        raise DAMM_V2_ERRORS.fail(ctx, _ACCOUNT_OWNED_BY_WRONG_PROGRAM)
    if not ctx.is_writable(key):
        raise DAMM_V2_ERRORS.fail(ctx, _ACCOUNT_NOT_MUTABLE)
    if len(account.data) < 8:
        raise DAMM_V2_ERRORS.fail(ctx, _DISCRIMINATOR_NOT_FOUND)
    if account.data[:8] != DAMM_V2_POOL:
        raise DAMM_V2_ERRORS.fail(ctx, _DISCRIMINATOR_MISMATCH)
    try:
        return account, decode_damm_v2_pool(account.data[:DAMM_V2_POOL_SIZE])
    except LayoutError:
        raise DAMM_V2_ERRORS.panic(ctx, "pool is shorter than Pool") from None


def check_swap_accounts(ctx: InstructionContext, parsed: ParsedDammV2Swap) -> CheckedDammV2Swap:
    """Run the fast path's checks in its order; raise InstructionFailure on the first failure."""
    keys = parsed.accounts
    if keys.pool_authority != DAMM_V2_POOL_AUTHORITY:
        raise DAMM_V2_ERRORS.fail(ctx, _CONSTRAINT_ADDRESS)
    pool_account, pool = _pool(ctx, keys.pool)
    if pool.token_a_vault != keys.token_a_vault or pool.token_b_vault != keys.token_b_vault:
        raise DAMM_V2_ERRORS.fail(ctx, _CONSTRAINT_HAS_ONE)
    input_token = _mut_token_account(ctx, keys.input_token_account)
    _mut_token_account(ctx, keys.output_token_account)
    vault_a = _mut_token_account(ctx, keys.token_a_vault)
    if vault_a.owner != keys.token_a_program:
        raise DAMM_V2_ERRORS.fail(ctx, _CONSTRAINT_TOKEN_TOKEN_PROGRAM)
    vault_b = _mut_token_account(ctx, keys.token_b_vault)
    if vault_b.owner != keys.token_b_program:
        raise DAMM_V2_ERRORS.fail(ctx, _CONSTRAINT_TOKEN_TOKEN_PROGRAM)
    mints: list[Account] = []
    for mint_key, vault in ((keys.token_a_mint, vault_a), (keys.token_b_mint, vault_b)):
        if mint_key != _vault_mint(ctx, vault):
            raise DAMM_V2_ERRORS.fail(ctx, _CONSTRAINT_TOKEN_MINT)
        mint = ctx.get(mint_key)
        if mint is None or mint.owner not in TOKEN_PROGRAMS:
            raise DAMM_V2_ERRORS.fail(ctx, _ACCOUNT_OWNED_BY_WRONG_PROGRAM)
        mints.append(mint)
    if not ctx.is_signer(keys.payer):
        raise DAMM_V2_ERRORS.fail(ctx, _ACCOUNT_NOT_SIGNER)
    if keys.token_a_program not in TOKEN_PROGRAMS or keys.token_b_program not in TOKEN_PROGRAMS:
        raise DAMM_V2_ERRORS.fail(ctx, _INVALID_PROGRAM_ID)
    if keys.event_authority != DAMM_V2_EVENT_AUTHORITY:
        raise DAMM_V2_ERRORS.fail(ctx, _CONSTRAINT_SEEDS)
    if keys.referral_token_account is not None:
        _mut_token_account(ctx, keys.referral_token_account)
    return CheckedDammV2Swap(
        parsed=parsed,
        pool_account=pool_account,
        pool=pool,
        token_a_mint=mints[0],
        token_b_mint=mints[1],
        token_a_vault=vault_a,
        token_b_vault=vault_b,
        input_token=input_token,
    )

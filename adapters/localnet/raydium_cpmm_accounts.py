"""The account checks Raydium CPMM's `swap_base_input` runs before its handler (Anchor's `Swap`).

Anchor's generated `try_accounts` works in two passes (raydium-cp-swap is built with
Anchor 0.32.1): first it deserializes every account in struct order, which checks
signers, owners, discriminators and that token accounts, mints and token programs
are what their types say; then it runs the `#[account(...)]` constraints, again in
struct order (`mut` before `constraint`/`address` within an account). So a payer that
did not sign fails before a wrong authority, even though the authority comes second.

Pass 1 (deserialization):
payer `Signer` → AccountNotSigner 3010; amm_config `Account<AmmConfig>` and
pool_state/observation_state `AccountLoader` → AccountNotInitialized 3012 (the config
only), AccountOwnedByWrongProgram 3007, AccountDiscriminatorNotFound 3001,
AccountDiscriminatorMismatch 3002, AccountDidNotDeserialize 3003; the four token
accounts and two mints `InterfaceAccount` → 3012 for a missing account, 3007 unless
owned by SPL Token or Token-2022, and the token program's unpack error
(InvalidAccountData, UninitializedAccount) passed on; the token programs `Interface`
→ InvalidProgramId 3008.

Pass 2 (constraints):
authority seeds `[AUTH_SEED]` → ConstraintSeeds 2006; amm_config address
== pool.amm_config → ConstraintAddress 2012; every `mut` account writable →
ConstraintMut 2000; each vault one of the pool's two → ConstraintRaw 2003; each mint
== its vault's mint → 2012; observation address == pool.observation_key → 2012.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.account import Account
from solders.pubkey import Pubkey

from adapters.localnet.anchor_program import AnchorErrors
from adapters.localnet.emulation import InstructionContext
from adapters.localnet.token_accounts import (
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAMS,
    read_mint,
    read_token_account_data,
)
from adapters.solana.instructions import ParsedCpmmSwap
from adapters.solana.layout_fields import LayoutError
from adapters.solana.programs import (
    CPMM_AMM_CONFIG,
    CPMM_OBSERVATION_STATE,
    CPMM_POOL_STATE,
    RAYDIUM_CPMM_ERROR_TABLE,
)
from adapters.solana.raydium_cpmm_layouts import (
    CPMM_AMM_CONFIG_SIZE,
    CPMM_OBSERVATION_STATE_SIZE,
    CPMM_POOL_STATE_SIZE,
    CpmmAmmConfig,
    CpmmObservationState,
    CpmmPoolState,
    decode_cpmm_amm_config,
    decode_cpmm_observation_state,
    decode_cpmm_pool_state,
)
from adapters.solana.token_layouts import ACCOUNT_STATE_UNINITIALIZED, MINT_SIZE, Mint, TokenAccount

CPMM_ERRORS = AnchorErrors(RAYDIUM_CPMM_ERROR_TABLE)

_ACCOUNT_NOT_INITIALIZED = 3012
_ACCOUNT_OWNED_BY_WRONG_PROGRAM = 3007
_DISCRIMINATOR_NOT_FOUND = 3001
_DISCRIMINATOR_MISMATCH = 3002
_DID_NOT_DESERIALIZE = 3003
_INVALID_PROGRAM_ID = 3008
_ACCOUNT_NOT_SIGNER = 3010
_CONSTRAINT_MUT = 2000
_CONSTRAINT_RAW = 2003
_CONSTRAINT_SEEDS = 2006
_CONSTRAINT_ADDRESS = 2012


@dataclass(frozen=True)
class CheckedToken:
    """A token account that passed `InterfaceAccount<TokenAccount>`."""

    address: Pubkey
    account: Account
    state: TokenAccount


@dataclass(frozen=True)
class CheckedMint:
    address: Pubkey
    account: Account
    state: Mint


@dataclass(frozen=True)
class CheckedCpmmSwap:
    """Everything the handler reads, decoded once, after every Anchor check passed."""

    parsed: ParsedCpmmSwap
    config: CpmmAmmConfig
    pool_account: Account
    pool: CpmmPoolState
    input_token: CheckedToken
    output_token: CheckedToken
    input_vault: CheckedToken
    output_vault: CheckedToken
    input_mint: CheckedMint
    output_mint: CheckedMint
    observation_account: Account
    observation: CpmmObservationState


def _missing(account: Account | None) -> bool:
    """Anchor's `AccountNotInitialized` test: a system-owned account without lamports."""
    return account is None or (account.owner == SYSTEM_PROGRAM_ID and account.lamports == 0)


def _program_account(
    ctx: InstructionContext,
    program_id: Pubkey,
    key: Pubkey,
    name: str,
    discriminator: bytes,
    *,
    check_initialized: bool,
) -> Account:
    """`Account<T>` / `AccountLoader<T>`: owner, then the 8-byte discriminator."""
    account = ctx.get(key)
    if check_initialized and _missing(account):
        raise CPMM_ERRORS.fail(ctx, _ACCOUNT_NOT_INITIALIZED, account=name)
    if account is None or account.owner != program_id:
        owner = account.owner if account is not None else SYSTEM_PROGRAM_ID
        raise CPMM_ERRORS.fail(ctx, _ACCOUNT_OWNED_BY_WRONG_PROGRAM, account=name, keys=(owner, program_id))
    if len(account.data) < 8:
        raise CPMM_ERRORS.fail(ctx, _DISCRIMINATOR_NOT_FOUND, account=name)
    if account.data[:8] != discriminator:
        raise CPMM_ERRORS.fail(ctx, _DISCRIMINATOR_MISMATCH, account=name)
    return account


def _token_account(ctx: InstructionContext, key: Pubkey, name: str) -> CheckedToken:
    account = ctx.get(key)
    if _missing(account):
        raise CPMM_ERRORS.fail(ctx, _ACCOUNT_NOT_INITIALIZED, account=name)
    assert account is not None
    if account.owner not in TOKEN_PROGRAMS:
        raise CPMM_ERRORS.fail(ctx, _ACCOUNT_OWNED_BY_WRONG_PROGRAM, account=name)
    state = read_token_account_data(account.data)
    if state is None:
        raise CPMM_ERRORS.builtin(ctx, "InvalidAccountData")
    if state.state == ACCOUNT_STATE_UNINITIALIZED:
        raise CPMM_ERRORS.builtin(ctx, "UninitializedAccount")
    return CheckedToken(key, account, state)


def _mint(ctx: InstructionContext, key: Pubkey, name: str) -> CheckedMint:
    account = ctx.get(key)
    if _missing(account):
        raise CPMM_ERRORS.fail(ctx, _ACCOUNT_NOT_INITIALIZED, account=name)
    assert account is not None
    if account.owner not in TOKEN_PROGRAMS:
        raise CPMM_ERRORS.fail(ctx, _ACCOUNT_OWNED_BY_WRONG_PROGRAM, account=name)
    state = read_mint(account)
    if state is None:
        raise CPMM_ERRORS.builtin(
            ctx, "InvalidAccountData" if len(account.data) < MINT_SIZE else "UninitializedAccount"
        )
    return CheckedMint(key, account, state)


def _decode_config(ctx: InstructionContext, data: bytes) -> CpmmAmmConfig:
    # Borsh reads the fields it needs and ignores trailing bytes; a short account does not deserialize.
    try:
        return decode_cpmm_amm_config(data[:CPMM_AMM_CONFIG_SIZE])
    except LayoutError:
        raise CPMM_ERRORS.fail(ctx, _DID_NOT_DESERIALIZE, account="amm_config") from None


def _decode_pool(ctx: InstructionContext, data: bytes) -> CpmmPoolState:
    # Zero-copy: `load()` casts the first bytes; a short account panics on the slice.
    try:
        return decode_cpmm_pool_state(data[:CPMM_POOL_STATE_SIZE])
    except LayoutError:
        raise CPMM_ERRORS.panic(ctx, "pool_state is shorter than PoolState") from None


def _decode_observation(ctx: InstructionContext, data: bytes) -> CpmmObservationState:
    try:
        return decode_cpmm_observation_state(data[:CPMM_OBSERVATION_STATE_SIZE])
    except LayoutError:
        raise CPMM_ERRORS.panic(ctx, "observation_state is shorter than ObservationState") from None


def check_swap_accounts(
    ctx: InstructionContext, parsed: ParsedCpmmSwap, program_id: Pubkey, authority: Pubkey
) -> CheckedCpmmSwap:
    """Run Anchor's two passes over the 13 accounts; raise InstructionFailure on the first failure."""
    keys = parsed.accounts
    # ---- pass 1: deserialize every account, in struct order
    if not ctx.is_signer(keys.payer):
        raise CPMM_ERRORS.fail(ctx, _ACCOUNT_NOT_SIGNER, account="payer")
    config_account = _program_account(
        ctx, program_id, keys.amm_config, "amm_config", CPMM_AMM_CONFIG, check_initialized=True
    )
    config = _decode_config(ctx, config_account.data)
    pool_account = _program_account(
        ctx, program_id, keys.pool_state, "pool_state", CPMM_POOL_STATE, check_initialized=False
    )
    input_token = _token_account(ctx, keys.input_token_account, "input_token_account")
    output_token = _token_account(ctx, keys.output_token_account, "output_token_account")
    input_vault = _token_account(ctx, keys.input_vault, "input_vault")
    output_vault = _token_account(ctx, keys.output_vault, "output_vault")
    for key, name in (
        (keys.input_token_program, "input_token_program"),
        (keys.output_token_program, "output_token_program"),
    ):
        if key not in TOKEN_PROGRAMS:
            raise CPMM_ERRORS.fail(ctx, _INVALID_PROGRAM_ID, account=name)
    input_mint = _mint(ctx, keys.input_token_mint, "input_token_mint")
    output_mint = _mint(ctx, keys.output_token_mint, "output_token_mint")
    observation_account = _program_account(
        ctx,
        program_id,
        keys.observation_state,
        "observation_state",
        CPMM_OBSERVATION_STATE,
        check_initialized=False,
    )

    # ---- pass 2: the constraints, in struct order
    if keys.authority != authority:
        raise CPMM_ERRORS.fail(ctx, _CONSTRAINT_SEEDS, account="authority", keys=(keys.authority, authority))
    pool = _decode_pool(ctx, pool_account.data)
    if keys.amm_config != pool.amm_config:
        raise CPMM_ERRORS.fail(
            ctx, _CONSTRAINT_ADDRESS, account="amm_config", keys=(keys.amm_config, pool.amm_config)
        )
    _require_mut(ctx, keys.pool_state, "pool_state")
    _require_mut(ctx, keys.input_token_account, "input_token_account")
    _require_mut(ctx, keys.output_token_account, "output_token_account")
    for vault, name in ((keys.input_vault, "input_vault"), (keys.output_vault, "output_vault")):
        _require_mut(ctx, vault, name)
        if vault not in (pool.token_0_vault, pool.token_1_vault):
            raise CPMM_ERRORS.fail(ctx, _CONSTRAINT_RAW, account=name)
    for mint, vault_state, name in (
        (keys.input_token_mint, input_vault.state, "input_token_mint"),
        (keys.output_token_mint, output_vault.state, "output_token_mint"),
    ):
        if mint != vault_state.mint:
            raise CPMM_ERRORS.fail(ctx, _CONSTRAINT_ADDRESS, account=name, keys=(mint, vault_state.mint))
    _require_mut(ctx, keys.observation_state, "observation_state")
    if keys.observation_state != pool.observation_key:
        raise CPMM_ERRORS.fail(
            ctx,
            _CONSTRAINT_ADDRESS,
            account="observation_state",
            keys=(keys.observation_state, pool.observation_key),
        )
    observation = _decode_observation(ctx, observation_account.data)
    return CheckedCpmmSwap(
        parsed=parsed,
        config=config,
        pool_account=pool_account,
        pool=pool,
        input_token=input_token,
        output_token=output_token,
        input_vault=input_vault,
        output_vault=output_vault,
        input_mint=input_mint,
        output_mint=output_mint,
        observation_account=observation_account,
        observation=observation,
    )


def _require_mut(ctx: InstructionContext, key: Pubkey, name: str) -> None:
    if not ctx.is_writable(key):
        raise CPMM_ERRORS.fail(ctx, _CONSTRAINT_MUT, account=name)

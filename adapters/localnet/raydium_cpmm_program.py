"""Raydium CPMM (raydium-cp-swap) `swap_base_input`, emulated for the local chain.

The program's binary cannot run here (see `adapters.localnet`), so this module does
what its `swap_base_input` does, in the program's order and with its error codes, on
the real account layouts:

1. Anchor's dispatch: `Instruction: SwapBaseInput` is logged, the arguments and the
   13 accounts are read (`parse_cpmm_swap`: 100/101/102/3005); any other instruction
   discriminator is InstructionFallbackNotFound (101), since only the swap is emulated.
2. Anchor's account checks (`raydium_cpmm_accounts`).
3. The handler (`instructions/swap_base_input.rs`, the 2025-11 audit version):
   NotApproved (6000) if the swap bit of `status` is set or the clock's unix_timestamp
   is before `open_time`; the direction from the vault pair (InvalidVault 6008); the
   math of `domain.curves.cpmm` on reserves = vault balances minus the fees owed;
   ExceededSlippage (6005); the fee counters; the `SwapEvent` (`Program data: ...`).
4. `transfer_checked` input account → input vault signed by the payer, then output
   vault → output account signed by the authority PDA (seeds `[AUTH_SEED, auth_bump]`),
   each skipped for a zero amount, through `emulation.token_transfer`.
5. The observation (TWAP) account, by the current rule (`update_observation`), and
   `pool.recent_epoch = Clock.epoch`. Only the bytes of changed fields are written, so
   whatever else an account holds (padding) stays as it was, as with the program's
   zero-copy writes.

Not emulated (the instruction fails with ProgramFailedToComplete and says so in its
logs): Token-2022 mints carrying extensions (transfer fees), the other instructions.

Compute units: `CPMM_SWAP_UNITS` (40,000) is what a successful swap consumes here in
total, CPIs included, charged in phases so that a failure stops part-way. It is a
declared estimate, the brief's "about 40k" for this program: the real binary cannot
be run offline to measure it.
"""

from __future__ import annotations

import base64
import struct

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from adapters.localnet.anchor_program import transfer_checked, write_changed
from adapters.localnet.emulation import (
    CPI_INVOKE_UNITS,
    TOKEN_TRANSFER_CHECKED_UNITS,
    InstructionContext,
    InstructionFailure,
)
from adapters.localnet.raydium_cpmm_accounts import (
    CPMM_ERRORS,
    CheckedCpmmSwap,
    CheckedMint,
    check_swap_accounts,
)
from adapters.solana.instructions import InstructionParseError, parse_cpmm_swap
from adapters.solana.programs import (
    CPMM_AUTH_SEED,
    CPMM_SWAP_EVENT,
    RAYDIUM_CPMM_DEVNET_PROGRAM_ID,
    RAYDIUM_CPMM_PROGRAM_IDS,
    find_pda,
)
from adapters.solana.raydium_cpmm_layouts import (
    CpmmObservation,
    CpmmObservationState,
    apply_cpmm_swap,
    cpmm_curve_inputs,
    encode_cpmm_observation_state,
    encode_cpmm_pool_state,
)
from adapters.solana.token_layouts import MINT_SIZE
from domain.curves import cpmm
from domain.curves.errors import RAYDIUM_CPMM_ERRORS, ProgramError, ProgramPanic

CPMM_SWAP_UNITS = 40_000
_UNITS_DISPATCH = 1_500  # entrypoint, dispatch, argument decoding
_UNITS_ACCOUNTS = 16_000  # 13 account deserializations, the authority's find_program_address, constraints
_UNITS_OBSERVATION = 3_000
_UNITS_TRANSFERS = 2 * (CPI_INVOKE_UNITS + TOKEN_TRANSFER_CHECKED_UNITS)
_UNITS_HANDLER = CPMM_SWAP_UNITS - _UNITS_DISPATCH - _UNITS_ACCOUNTS - _UNITS_OBSERVATION - _UNITS_TRANSFERS

OBSERVATION_UPDATE_DURATION = 15  # seconds: a newer observation slot is opened after this long
_Q32 = 1 << 32
_U64 = 1 << 64
_U128 = 1 << 128


def update_observation(
    state: CpmmObservationState, now: int, price_0_x32: int, price_1_x32: int
) -> CpmmObservationState:
    """`ObservationState::update` (program rule since 2025-11): accumulate the pre-swap prices
    over the time since the last update, into the current slot if it is under 15 s old,
    else into the next slot of the ring. MathOverflow (6011) if a price × time overflows u128.
    """
    index = state.observation_index
    observations = list(state.observations)
    if not state.initialized:
        # The first swap only stamps the slot (the pool's init price is skipped).
        observations[index] = CpmmObservation(now, 0, 0)
        return CpmmObservationState(True, index, state.pool_id, tuple(observations), now)
    last = observations[index]
    next_index = 0 if index == len(observations) - 1 else index + 1
    last_update = state.last_update_timestamp or last.block_timestamp  # legacy accounts
    since_observation = max(now - last.block_timestamp, 0)
    since_update = max(now - last_update, 0)
    if since_update == 0 or since_observation == 0:
        return CpmmObservationState(state.initialized, index, state.pool_id, state.observations, last_update)
    delta_0, delta_1 = price_0_x32 * since_update, price_1_x32 * since_update
    if delta_0 >= _U128 or delta_1 >= _U128:
        raise RAYDIUM_CPMM_ERRORS.error("MathOverflow")
    cumulative_0 = (last.cumulative_token_0_price_x32 + delta_0) % _U128
    cumulative_1 = (last.cumulative_token_1_price_x32 + delta_1) % _U128
    if since_observation < OBSERVATION_UPDATE_DURATION:
        observations[index] = CpmmObservation(last.block_timestamp, cumulative_0, cumulative_1)
    else:
        observations[next_index] = CpmmObservation(now, cumulative_0, cumulative_1)
        index = next_index
    return CpmmObservationState(True, index, state.pool_id, tuple(observations), now)


def swap_event_data(
    pool: Pubkey, result: cpmm.CpmmSwapResult, input_mint: Pubkey, output_mint: Pubkey
) -> bytes:
    """The `SwapEvent` Anchor's `emit!` logs: discriminator + Borsh (170 bytes; no transfer fees)."""
    return (
        CPMM_SWAP_EVENT
        + bytes(pool)
        + struct.pack(
            "<QQQQQQ?", result.reserve_in, result.reserve_out, result.amount_in, result.amount_out, 0, 0, True
        )
        + bytes(input_mint)
        + bytes(output_mint)
        + struct.pack("<QQ?", result.trade_fee, result.creator_fee, result.creator_fee_on_input)
    )


class RaydiumCpmmProgram:
    """The emulated CPMM program; register it with `LocalChain(emulated_programs=[...])`."""

    def __init__(self, program_id: Pubkey = RAYDIUM_CPMM_DEVNET_PROGRAM_ID) -> None:
        if program_id not in RAYDIUM_CPMM_PROGRAM_IDS:
            raise ValueError(f"{program_id} is not a Raydium CPMM deployment")
        self._program_id = program_id
        self._authority, _ = find_pda([CPMM_AUTH_SEED], program_id)

    @property
    def program_id(self) -> Pubkey:
        return self._program_id

    @property
    def authority(self) -> Pubkey:
        """The vault and LP-mint authority PDA of every pool of this deployment."""
        return self._authority

    def execute(self, ctx: InstructionContext) -> None:
        ctx.consume(_UNITS_DISPATCH)
        metas = [AccountMeta(m.pubkey, m.is_signer, m.is_writable) for m in ctx.accounts]
        try:
            parsed = parse_cpmm_swap(Instruction(self._program_id, ctx.data, metas))
        except InstructionParseError as refused:
            # Anchor logs the instruction's name once it matched the discriminator.
            if refused.code not in (100, 101):
                ctx.log("Instruction: SwapBaseInput")
            raise CPMM_ERRORS.fail(ctx, refused.code) from None
        ctx.log("Instruction: SwapBaseInput")
        ctx.consume(_UNITS_ACCOUNTS)
        checked = check_swap_accounts(ctx, parsed, self._program_id, self._authority)
        ctx.consume(_UNITS_HANDLER)
        self._swap(ctx, checked)

    # -- the handler -----------------------------------------------------------------
    def _swap(self, ctx: InstructionContext, checked: CheckedCpmmSwap) -> None:
        keys, args, pool = checked.parsed.accounts, checked.parsed.args, checked.pool
        now = ctx.clock.unix_timestamp
        # Step 1-2, which the curve repeats; here because InvalidVault comes between them and the curve.
        if pool.status & cpmm.STATUS_SWAP_DISABLED or now % _U64 < pool.open_time:
            raise CPMM_ERRORS.fail(ctx, 6000)
        for mint in (checked.input_mint, checked.output_mint):
            self._refuse_transfer_fee_mint(ctx, mint)
        if args.amount_in == 0:
            raise CPMM_ERRORS.fail(ctx, 2505)
        # Step 3: the direction is the vault pair's.
        vaults = (keys.input_vault, keys.output_vault)
        if vaults == (pool.token_0_vault, pool.token_1_vault):
            zero_for_one = True
        elif vaults == (pool.token_1_vault, pool.token_0_vault):
            zero_for_one = False
        else:
            raise CPMM_ERRORS.fail(ctx, 6008)
        in_amount, out_amount = checked.input_vault.state.amount, checked.output_vault.state.amount
        vault_0, vault_1 = (in_amount, out_amount) if zero_for_one else (out_amount, in_amount)
        curve_pool, fees = cpmm_curve_inputs(pool, checked.config, vault_0, vault_1)
        try:
            result = cpmm.swap_base_input(
                curve_pool,
                fees,
                args.amount_in,
                zero_for_one=zero_for_one,
                unix_timestamp=now,
                minimum_amount_out=args.minimum_amount_out,
            )
            # The oracle prices, taken from the reserves before the swap (Q32).
            reserve_0, reserve_1 = cpmm.reserves_without_fees(vault_0, vault_1, pool.fees_owed)
        except (ProgramError, ProgramPanic) as error:
            raise CPMM_ERRORS.from_curve(ctx, error) from None
        ctx.log_raw(
            "Program data: "
            + base64.b64encode(
                swap_event_data(keys.pool_state, result, keys.input_token_mint, keys.output_token_mint)
            ).decode()
        )
        # Step 11: the transfers, each skipped for a zero amount as the program's helpers do.
        if result.amount_in:
            transfer_checked(
                ctx,
                keys.input_token_program,
                keys.input_token_account,
                keys.input_token_mint,
                checked.input_mint.state.decimals,
                keys.input_vault,
                keys.payer,
                result.amount_in,
                signed_by_pda=False,
            )
        if result.amount_out:
            transfer_checked(
                ctx,
                keys.output_token_program,
                keys.output_vault,
                keys.output_token_mint,
                checked.output_mint.state.decimals,
                keys.output_token_account,
                keys.authority,
                result.amount_out,
                signed_by_pda=self._authority_signs(ctx, pool.auth_bump, keys.authority),
            )
        # Step 12-13: the observation and the pool.
        ctx.consume(_UNITS_OBSERVATION)
        try:
            observation = update_observation(
                checked.observation, now % _U64, reserve_1 * _Q32 // reserve_0, reserve_0 * _Q32 // reserve_1
            )
        except ProgramError as error:
            raise CPMM_ERRORS.program_error(ctx, error) from None
        write_changed(
            ctx,
            keys.observation_state,
            checked.observation_account,
            encode_cpmm_observation_state(checked.observation),
            encode_cpmm_observation_state(observation),
        )
        after = apply_cpmm_swap(pool, result, ctx.clock.epoch)
        write_changed(
            ctx,
            keys.pool_state,
            checked.pool_account,
            encode_cpmm_pool_state(pool),
            encode_cpmm_pool_state(after),
        )

    @staticmethod
    def _refuse_transfer_fee_mint(ctx: InstructionContext, mint: CheckedMint) -> None:
        """`get_transfer_fee` reads a Token-2022 mint's TransferFeeConfig; we do not model extensions."""
        if len(mint.account.data) > MINT_SIZE:
            raise CPMM_ERRORS.not_emulated(ctx, f"a Token-2022 mint with extensions ({mint.address})")

    def _authority_signs(self, ctx: InstructionContext, bump: int, authority: Pubkey) -> bool:
        """Whether `invoke_signed` with `[AUTH_SEED, [pool.auth_bump]]` signs for `authority`."""
        try:
            derived = Pubkey.create_program_address([CPMM_AUTH_SEED, bytes([bump])], self._program_id)
        except Exception:  # the seeds land on the curve: the runtime refuses them
            ctx.log_raw("Could not create program address with signer seeds")
            raise InstructionFailure("InvalidSeeds") from None
        return derived == authority

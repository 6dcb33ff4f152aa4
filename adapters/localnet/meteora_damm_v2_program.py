"""Meteora DAMM v2 (cp-amm) `swap` and `swap2`, emulated for the local chain.

The program serves both through its pinocchio fast path (`entrypoint.rs`, release
0.2.1), which this module follows step by step on the real Pool layout:

1. Dispatch: fewer than 14 accounts → Custom(3005) and bad arguments → Custom(102),
   both returned raw, without a log line (the fast path returns the bare code); then
   `Instruction: Swap` / `Instruction: Swap2` is logged. Data starting with Anchor's
   event tag is the program's own event CPI (`p_event_dispatch`: the event authority
   must sign, ConstraintSigner 2002, and be the PDA, ConstraintSeeds 2006). Anything
   else goes to Anchor's dispatcher, which here knows no other instruction
   (InstructionFallbackNotFound 101, InstructionMissing 100).
2. The account checks (`meteora_damm_v2_accounts`).
3. The access check from the chain clock (a slot or a unix timestamp, by
   `activation_type`; InvalidActivationType 6010, PoolDisabled 6003; the pool's
   whitelisted vault may swap from activation − buffer), then for `swap2` the mode:
   0 ExactIn is emulated; 1 PartialFill and 2 ExactOut are refused with InvalidInput
   (6018), as is any other value (the program's own answer for those).
4. The direction (input account's mint == token A mint → A to B), then the math of
   `domain.curves.damm_v2.swap_exact_in`: a layout-0 pool's reserves recomputed from
   the curve, AmountIsZero 6006, the fee per `collect_fee_mode`, PriceRangeViolation
   6015, ExceededSlippage 6002.
5. The Pool written back (`apply_damm_v2_swap`: fees, curve, reserves, dynamic fee,
   `layout_version = 1`), field by field.
6. `TransferChecked` payer's input account → input vault; output vault → output
   account signed by the pool authority; when a referral account is passed (any key
   but the program id in its slot), the referral fee from the fee token's vault to it,
   even when it is 0, as the program does.
7. The event: the program self-invokes with `EVENT_IX_TAG + EvtSwap2` signed by its
   event authority, and clients read the event from that inner instruction. We make
   the same self-CPI (an inner instruction with the event's Borsh data, framed
   `invoke [2]` … `success` in the logs), so what a client parses is what the real
   program would have produced.

Not emulated (ProgramFailedToComplete, said in the logs): Token-2022 mints with
extensions (transfer fees), fees `domain.curves.damm_v2` does not price (the rate
limiter when it applies, the market-cap schedulers).

Compute units: `DAMM_V2_SWAP_UNITS` (30,000) is what a successful swap without a
referral consumes here, CPIs included (a referral transfer adds one more CPI). A
declared estimate below the Raydium figure because the program runs its swap
through a pinocchio fast path meant to save units; the binary cannot be run offline
to measure it.
"""

from __future__ import annotations

import struct

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from adapters.localnet.anchor_program import transfer_checked, write_changed
from adapters.localnet.emulation import (
    CPI_INVOKE_UNITS,
    TOKEN_TRANSFER_CHECKED_UNITS,
    AccountMetaView,
    InstructionContext,
)
from adapters.localnet.meteora_damm_v2_accounts import (
    DAMM_V2_ERRORS,
    CheckedDammV2Swap,
    check_swap_accounts,
)
from adapters.solana.instructions import InstructionParseError, parse_damm_v2_swap
from adapters.solana.meteora_damm_v2_layouts import DammV2PoolAccount, apply_damm_v2_swap, encode_damm_v2_pool
from adapters.solana.programs import (
    ANCHOR_EVENT_IX_TAG,
    DAMM_V2_EVENT_AUTHORITY,
    DAMM_V2_EVT_SWAP2,
    DAMM_V2_POOL_AUTHORITY,
    METEORA_DAMM_V2_PROGRAM_ID,
)
from adapters.solana.token_layouts import MINT_SIZE
from domain.curves import damm_v2
from domain.curves.errors import ProgramError, ProgramPanic, UnsupportedPool

DAMM_V2_SWAP_UNITS = 30_000
_UNITS_DISPATCH = 600  # pinocchio entrypoint and argument decoding
_UNITS_ACCOUNTS = 6_000  # 14 hand-written account checks
_UNITS_EVENT_CALLEE = 300  # p_event_dispatch: a signer and an address check
_UNITS_CPIS = 2 * (CPI_INVOKE_UNITS + TOKEN_TRANSFER_CHECKED_UNITS) + CPI_INVOKE_UNITS + _UNITS_EVENT_CALLEE
_UNITS_HANDLER = DAMM_V2_SWAP_UNITS - _UNITS_DISPATCH - _UNITS_ACCOUNTS - _UNITS_CPIS

_SWAP_MODE_EXACT_IN = 0
_SWAP_MODE_NAMES = {1: "PartialFill", 2: "ExactOut"}
_CONSTRAINT_SIGNER = 2002
_CONSTRAINT_SEEDS = 2006
_DID_NOT_DESERIALIZE = 3003
_INVALID_INPUT = 6018
_U64 = 1 << 64


def evt_swap2_data(
    pool_key: Pubkey,
    pool_after: DammV2PoolAccount,
    result: damm_v2.DammV2SwapResult,
    *,
    has_referral: bool,
    params: tuple[int, int, int],
    timestamp: int,
) -> bytes:
    """`EvtSwap2` as Anchor serializes it: discriminator + Borsh (no transfer fees: SPL mints)."""
    amount_0, amount_1, swap_mode = params
    return (
        DAMM_V2_EVT_SWAP2
        + bytes(pool_key)
        + struct.pack(
            "<BB?QQB",
            0 if result.a_to_b else 1,
            pool_after.collect_fee_mode,
            has_referral,
            amount_0,
            amount_1,
            swap_mode,
        )
        # SwapResult2: included/excluded fee input, amount_left, output, next_sqrt_price, fees.
        + struct.pack("<QQQQ", result.amount_in, result.curve_amount_in, 0, result.amount_out)
        + pool_after.sqrt_price.to_bytes(16, "little")
        + struct.pack(
            "<QQQQ", result.claiming_fee, result.protocol_fee, result.compounding_fee, result.referral_fee
        )
        + struct.pack(
            "<QQQQQQ",
            result.amount_in,
            result.amount_out,
            result.amount_out,
            timestamp,
            pool_after.token_a_amount,
            pool_after.token_b_amount,
        )
    )


class MeteoraDammV2Program:
    """The emulated DAMM v2 program; register it with `LocalChain(emulated_programs=[...])`."""

    program_id: Pubkey = METEORA_DAMM_V2_PROGRAM_ID

    def execute(self, ctx: InstructionContext) -> None:
        ctx.consume(_UNITS_DISPATCH)
        if ctx.data.startswith(ANCHOR_EVENT_IX_TAG):
            self._event_dispatch(ctx)
            return
        metas = [AccountMeta(m.pubkey, m.is_signer, m.is_writable) for m in ctx.accounts]
        try:
            parsed = parse_damm_v2_swap(Instruction(self.program_id, ctx.data, metas))
        except InstructionParseError as refused:
            if refused.code in (3005, 102):
                raise DAMM_V2_ERRORS.silent(refused.code) from None
            raise DAMM_V2_ERRORS.fail(ctx, refused.code) from None
        ctx.log("Instruction: Swap2" if parsed.is_swap2 else "Instruction: Swap")
        ctx.consume(_UNITS_ACCOUNTS)
        checked = check_swap_accounts(ctx, parsed)
        ctx.consume(_UNITS_HANDLER)
        self._swap(ctx, checked)

    def _event_dispatch(self, ctx: InstructionContext) -> None:
        """The event CPI's callee: only the program itself, signing as its event authority, gets by."""
        authority = ctx.account(0)
        if not ctx.is_signer(authority):
            raise DAMM_V2_ERRORS.fail(ctx, _CONSTRAINT_SIGNER)
        if authority != DAMM_V2_EVENT_AUTHORITY:
            raise DAMM_V2_ERRORS.fail(ctx, _CONSTRAINT_SEEDS)

    # -- the handler -----------------------------------------------------------------
    def _swap(self, ctx: InstructionContext, checked: CheckedDammV2Swap) -> None:
        parsed, pool = checked.parsed, checked.pool
        keys, args = parsed.accounts, parsed.args
        clock = ctx.clock
        whitelisted = keys.payer == pool.whitelisted_vault
        try:
            damm_v2.check_can_swap(
                pool.curve_pool(),
                slot=clock.slot,
                unix_timestamp=clock.unix_timestamp,
                payer_is_whitelisted_vault=whitelisted,
            )
        except ProgramError as error:
            raise DAMM_V2_ERRORS.program_error(ctx, error) from None
        if args.swap_mode != _SWAP_MODE_EXACT_IN:
            if args.swap_mode in _SWAP_MODE_NAMES:
                ctx.log(f"local chain: swap2 mode {_SWAP_MODE_NAMES[args.swap_mode]} is not emulated")
            raise DAMM_V2_ERRORS.fail(ctx, _INVALID_INPUT)
        if len(checked.input_token.data) < 32:
            raise DAMM_V2_ERRORS.fail(ctx, _DID_NOT_DESERIALIZE)
        a_to_b = Pubkey.from_bytes(checked.input_token.data[:32]) == keys.token_a_mint
        for mint_key, mint in (
            (keys.token_a_mint, checked.token_a_mint),
            (keys.token_b_mint, checked.token_b_mint),
        ):
            if len(mint.data) > MINT_SIZE:
                raise DAMM_V2_ERRORS.not_emulated(ctx, f"a Token-2022 mint with extensions ({mint_key})")
        try:
            result = damm_v2.swap_exact_in(
                pool.curve_pool(),
                pool.pool_fees,
                args.amount_0,
                a_to_b,
                slot=clock.slot,
                unix_timestamp=clock.unix_timestamp,
                has_referral=checked.has_referral,
                minimum_amount_out=args.amount_1,
                payer_is_whitelisted_vault=whitelisted,
            )
            after = apply_damm_v2_swap(pool, result)
        except (ProgramError, ProgramPanic, UnsupportedPool) as error:
            raise DAMM_V2_ERRORS.from_curve(ctx, error) from None
        write_changed(
            ctx, keys.pool, checked.pool_account, encode_damm_v2_pool(pool), encode_damm_v2_pool(after)
        )
        self._transfers(ctx, checked, result, a_to_b)
        timestamp = clock.unix_timestamp % _U64
        event = evt_swap2_data(
            keys.pool,
            after,
            result,
            has_referral=checked.has_referral,
            params=(args.amount_0, args.amount_1, args.swap_mode),
            timestamp=timestamp,
        )
        with ctx.invoke(
            self.program_id,
            [AccountMetaView(keys.event_authority, True, False)],
            ANCHOR_EVENT_IX_TAG + event,
            signer_pdas=[keys.event_authority],
        ):
            ctx.consume(_UNITS_EVENT_CALLEE)

    @staticmethod
    def _transfers(
        ctx: InstructionContext, checked: CheckedDammV2Swap, result: damm_v2.DammV2SwapResult, a_to_b: bool
    ) -> None:
        """User → input vault (payer signs), output vault → user and the referral fee (pool authority)."""
        keys = checked.parsed.accounts
        side_a = (
            keys.token_a_vault,
            keys.token_a_mint,
            _decimals(checked.token_a_mint.data),
            keys.token_a_program,
        )
        side_b = (
            keys.token_b_vault,
            keys.token_b_mint,
            _decimals(checked.token_b_mint.data),
            keys.token_b_program,
        )
        (in_vault, in_mint, in_decimals, in_program), (out_vault, out_mint, out_decimals, out_program) = (
            (side_a, side_b) if a_to_b else (side_b, side_a)
        )
        transfer_checked(
            ctx,
            in_program,
            keys.input_token_account,
            in_mint,
            in_decimals,
            in_vault,
            keys.payer,
            result.amount_in,
            signed_by_pda=False,
        )
        transfer_checked(
            ctx,
            out_program,
            out_vault,
            out_mint,
            out_decimals,
            keys.output_token_account,
            DAMM_V2_POOL_AUTHORITY,
            result.amount_out,
            signed_by_pda=True,
        )
        if keys.referral_token_account is not None:
            fee_vault, fee_mint, fee_decimals, fee_program = side_a if result.fees_on_token_a else side_b
            transfer_checked(
                ctx,
                fee_program,
                fee_vault,
                fee_mint,
                fee_decimals,
                keys.referral_token_account,
                DAMM_V2_POOL_AUTHORITY,
                result.referral_fee,
                signed_by_pda=True,
            )


def _decimals(mint_data: bytes) -> int:
    """`p_accessor_decimals`: byte 44 of the mint."""
    return mint_data[44] if len(mint_data) > 44 else 0

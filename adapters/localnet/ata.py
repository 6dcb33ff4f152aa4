"""An emulated Associated Token Account program (`ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL`).

LiteSVM in solders 0.29 does ship the real program (the research note that said it
did not had mistyped the id), so `LocalChain` runs the real one unless this emulation
is registered. It is kept because it is the reference emulation for the pool programs
(it shows the CPI framing, PDA checks and rent handling an emulation needs) and because
a unit test compares it with the real program on the same transactions.

Supported: `Create` (data empty or `[0]`) and `CreateIdempotent` (`[1]`), accounts
(payer, associated account, wallet, mint, system program, token program), for SPL
Token mints and for Token-2022 mints without extensions. Errors are the real
program's: a wrong address → InvalidSeeds, an existing account of another wallet →
Custom(0), of another mint → InvalidAccountData, an account owned by another program
(or any existing one for `Create`) → IllegalOwner, a mint the token program does not
own → IncorrectProgramId, an uninitialized mint → Custom(2), a poor payer → Custom(1).
`RecoverNested` (`[2]`) is not emulated (InvalidInstructionData).
"""

from __future__ import annotations

import struct

from solders.account import Account
from solders.pubkey import Pubkey

from adapters.localnet.emulation import AccountMetaView, InstructionContext, InstructionFailure
from adapters.localnet.token_accounts import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    NATIVE_MINT,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAMS,
    read_mint,
    read_token_account_data,
)
from adapters.solana.token_layouts import (
    ACCOUNT_STATE_INITIALIZED,
    ACCOUNT_TYPE_ACCOUNT,
    MINT_SIZE,
    TOKEN_ACCOUNT_SIZE,
    TokenAccount,
    encode_token_account,
)

# Token-2022 instruction GetAccountDataSize(21) asked for the ImmutableOwner extension (7).
_GET_ACCOUNT_DATA_SIZE = bytes([21]) + struct.pack("<H", 7)
_INITIALIZE_IMMUTABLE_OWNER = bytes([22])
_IMMUTABLE_OWNER_TLV = struct.pack("<HH", 7, 0)

# Units measured on the real program in LiteSVM (CreateIdempotent on an existing
# account ~4,400; a creation ~13,500 with its CPIs); the split below adds up to that.
_UNITS_PARSE_AND_DERIVE = 3_500
_UNITS_EXISTING_CHECK = 900
_UNITS_CREATE = 5_400
# What each token program's CPIs cost (GetAccountDataSize, InitializeImmutableOwner,
# InitializeAccount3): p-token for SPL Token, measured; Token-2022, measured.
_TOKEN_CPI_UNITS = {
    False: (183, 38, 235),
    True: (1_204, 734, 1_612),
}


def associated_token_address(wallet: Pubkey, mint: Pubkey, token_program: Pubkey) -> Pubkey:
    """The associated token account of `wallet` for `mint` under `token_program`."""
    return Pubkey.find_program_address(
        [bytes(wallet), bytes(token_program), bytes(mint)], ASSOCIATED_TOKEN_PROGRAM_ID
    )[0]


class AssociatedTokenAccountProgram:
    """The emulation; register it with `LocalChain(emulated_programs=[...])`."""

    program_id: Pubkey = ASSOCIATED_TOKEN_PROGRAM_ID

    def execute(self, ctx: InstructionContext) -> None:
        if ctx.data in (b"", b"\x00"):
            idempotent = False
        elif ctx.data == b"\x01":
            idempotent = True
        else:
            if ctx.data == b"\x02":
                ctx.log("RecoverNested is not emulated by the local chain")
            ctx.consume(1_800)
            raise InstructionFailure("InvalidInstructionData")
        ctx.consume(_UNITS_PARSE_AND_DERIVE)
        ctx.log("CreateIdempotent" if idempotent else "Create")
        payer, ata, wallet, mint, _system, token_program = (ctx.account(i) for i in range(6))
        if associated_token_address(wallet, mint, token_program) != ata:
            ctx.log("Error: Associated address does not match seed derivation")
            raise InstructionFailure("InvalidSeeds")
        existing = ctx.get(ata)
        if idempotent and existing is not None and existing.owner == token_program:
            state = read_token_account_data(existing.data)
            if state is not None and state.state != 0:
                ctx.consume(_UNITS_EXISTING_CHECK)
                if state.owner != wallet:
                    ctx.log("Associated token account owner does not match address derivation")
                    raise InstructionFailure(0)
                if state.mint != mint:
                    raise InstructionFailure("InvalidAccountData")
                return
        if existing is not None and existing.owner != SYSTEM_PROGRAM_ID:
            raise InstructionFailure("IllegalOwner")
        if token_program not in TOKEN_PROGRAMS:
            raise InstructionFailure("IncorrectProgramId")
        ctx.consume(_UNITS_CREATE)
        self._create(ctx, payer, ata, wallet, mint, token_program, existing)

    def _create(
        self,
        ctx: InstructionContext,
        payer: Pubkey,
        ata: Pubkey,
        wallet: Pubkey,
        mint: Pubkey,
        token_program: Pubkey,
        existing: Account | None,
    ) -> None:
        is_2022 = token_program == TOKEN_2022_PROGRAM_ID
        size_units, immutable_units, init_units = _TOKEN_CPI_UNITS[is_2022]
        space = TOKEN_ACCOUNT_SIZE + (1 + len(_IMMUTABLE_OWNER_TLV) if is_2022 else 0)
        size_metas = [AccountMetaView(mint, False, False)]
        with ctx.invoke(token_program, size_metas, _GET_ACCOUNT_DATA_SIZE) as frame:
            if is_2022:
                ctx.log("Instruction: GetAccountDataSize")
            ctx.consume(size_units)
            mint_account = ctx.get(mint)
            if mint_account is None or mint_account.owner != token_program:
                ctx.log("Error: IncorrectProgramId")
                raise InstructionFailure("IncorrectProgramId")
            if read_mint(mint_account) is None:
                ctx.log("Error: Invalid Mint")
                raise InstructionFailure(2)
            if len(mint_account.data) > MINT_SIZE:
                ctx.log("Token-2022 mint extensions are not emulated by the local chain")
                raise InstructionFailure("InvalidAccountData")
            frame.return_data = struct.pack("<Q", space)

        rent = ctx.rent_exempt_minimum(space)
        held = existing.lamports if existing is not None else 0
        top_up = max(0, rent - held)
        if held == 0:
            data = struct.pack("<IQQ", 0, rent, space) + bytes(token_program)
            self._system_cpi(ctx, payer, ata, data, debit=rent, with_payer=True)
        else:
            if top_up:
                self._system_cpi(
                    ctx, payer, ata, struct.pack("<IQ", 2, top_up), debit=top_up, with_payer=True
                )
            self._system_cpi(ctx, payer, ata, struct.pack("<IQ", 8, space), debit=0, with_payer=False)
            self._system_cpi(
                ctx, payer, ata, struct.pack("<I", 1) + bytes(token_program), debit=0, with_payer=False
            )

        ctx.log("Initialize the associated token account")
        # The real program initializes ImmutableOwner under both token programs (a no-op in SPL Token).
        with ctx.invoke(token_program, [AccountMetaView(ata, False, True)], _INITIALIZE_IMMUTABLE_OWNER):
            if is_2022:
                ctx.log("Instruction: InitializeImmutableOwner")
            ctx.consume(immutable_units)
        init_metas = [AccountMetaView(ata, False, True), AccountMetaView(mint, False, False)]
        with ctx.invoke(token_program, init_metas, bytes([18]) + bytes(wallet)):
            if is_2022:
                ctx.log("Instruction: InitializeAccount3")
            ctx.consume(init_units)
            lamports = held + top_up
            native_reserve = rent if mint == NATIVE_MINT else None
            state = TokenAccount(
                mint=mint,
                owner=wallet,
                amount=lamports - rent if native_reserve is not None else 0,
                delegate=None,
                state=ACCOUNT_STATE_INITIALIZED,
                is_native=native_reserve,
                delegated_amount=0,
                close_authority=None,
            )
            data = encode_token_account(state)
            if is_2022:
                data += bytes([ACCOUNT_TYPE_ACCOUNT]) + _IMMUTABLE_OWNER_TLV
            ctx.set(ata, Account(lamports, data, token_program, False, 0))

    @staticmethod
    def _system_cpi(
        ctx: InstructionContext, payer: Pubkey, ata: Pubkey, data: bytes, *, debit: int, with_payer: bool
    ) -> None:
        """One System program CPI of the account creation, signed for `ata` by its seeds."""
        metas = [AccountMetaView(ata, True, True)]
        if with_payer:
            metas.insert(0, AccountMetaView(payer, True, True))
        with ctx.invoke(SYSTEM_PROGRAM_ID, metas, data, signer_pdas=[ata], builtin=True):
            ctx.consume(150)
            if not debit:
                return
            payer_account = ctx.get(payer)
            lamports = payer_account.lamports if payer_account is not None else 0
            if payer_account is not None and payer_account.data:
                ctx.log_raw("Transfer: `from` must not carry data")
                raise InstructionFailure("InvalidArgument")
            if lamports < debit:
                ctx.log_raw(f"Transfer: insufficient lamports {lamports}, need {debit}")
                raise InstructionFailure(1)
            assert payer_account is not None
            ctx.set(
                payer,
                Account(
                    lamports - debit, payer_account.data, payer_account.owner, False, payer_account.rent_epoch
                ),
            )
            current = ctx.get(ata)
            held = current.lamports if current is not None else 0
            ctx.set(ata, Account(held + debit, b"", SYSTEM_PROGRAM_ID, False, 0))

"""What the emulated pool programs share as Anchor programs: failing, transferring, writing.

Failing. Both pool programs are Anchor programs, so their failures look alike on a real
chain: Anchor logs one line per error (`error.log()`) and the instruction fails with
`Custom(code)`; a `ProgramError` that Anchor merely passes on (a token account that
does not unpack) fails with the runtime's field-less error instead; a Rust panic ends
in `ProgramFailedToComplete`. `AnchorErrors` builds those failures for one program's
error table and writes the log lines the program would write:

- `AnchorError caused by account: <name>. Error Code: ...` for an account constraint
  (Anchor names the account), followed by `Left:`/`Right:` and the two keys for the
  address and seeds constraints;
- `AnchorError occurred. Error Code: ...` for the handler's errors. The real program
  writes `thrown in <file>:<line>` here (from `err!`/`require!`); we do not keep
  source locations, so the line says `occurred`, which Anchor also prints.

Transferring. `transfer_checked` is the SPL `TransferChecked` CPI both programs make,
sent to the token program the instruction names (which need not own the accounts: then
that program refuses with IncorrectProgramId, as on a real chain).

Writing. `write_changed` stores only the bytes of the fields a swap changed, so whatever
else a program account holds (padding, fields our layouts retire) stays byte for byte,
as with the programs' zero-copy writes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from solders.account import Account
from solders.pubkey import Pubkey

from adapters.localnet.emulation import (
    TOKEN_TRANSFER_CHECKED_UNITS,
    AccountMetaView,
    InstructionContext,
    InstructionFailure,
    token_transfer,
)
from adapters.solana.programs import ANCHOR_ERROR_TABLE
from domain.curves.errors import ProgramError, ProgramPanic, UnsupportedPool

# The builtin ProgramErrors Anchor passes through from account deserialization, with the
# u64 it logs for them (the variant index shifted left by 32) and the runtime's wording.
_BUILTIN_ERRORS: Mapping[str, tuple[int, str]] = {
    "InvalidAccountData": (4 << 32, "An account's data contents was invalid"),
    "UninitializedAccount": (10 << 32, "An attempt to operate on an account that hasn't been initialized"),
    "NotEnoughAccountKeys": (11 << 32, "The instruction expected additional account keys"),
}


class AnchorErrors:
    """One Anchor program's failures: its own table (6000+) over Anchor's framework table."""

    def __init__(self, program_table: Mapping[int, tuple[str, str]]) -> None:
        self._table: dict[int, tuple[str, str]] = {**ANCHOR_ERROR_TABLE, **program_table}

    def fail(
        self,
        ctx: InstructionContext,
        code: int,
        *,
        account: str | None = None,
        keys: tuple[Pubkey, Pubkey] | None = None,
    ) -> InstructionFailure:
        """Log Anchor's error line for `code` and return the failure to raise."""
        name, message = self._table.get(code, ("Unknown", "Unknown error"))
        origin = f"caused by account: {account}" if account else "occurred"
        ctx.log(f"AnchorError {origin}. Error Code: {name}. Error Number: {code}. Error Message: {message}.")
        if keys is not None:
            ctx.log("Left:")
            ctx.log(str(keys[0]))
            ctx.log("Right:")
            ctx.log(str(keys[1]))
        return InstructionFailure(code)

    def silent(self, code: int) -> InstructionFailure:
        """A code returned without a log (DAMM v2's fast path returns some codes raw)."""
        return InstructionFailure(code)

    def program_error(self, ctx: InstructionContext, error: ProgramError) -> InstructionFailure:
        """A `domain.curves` error: the program's own code, logged as Anchor logs it."""
        return self.fail(ctx, error.code)

    def builtin(self, ctx: InstructionContext, name: str) -> InstructionFailure:
        """A runtime ProgramError Anchor passes on: logged, then failing with the field-less error."""
        number, message = _BUILTIN_ERRORS.get(name, (0, name))
        ctx.log(
            f"ProgramError occurred. Error Code: {name}. Error Number: {number}. Error Message: {message}."
        )
        return InstructionFailure(name)

    @staticmethod
    def panic(ctx: InstructionContext, reason: str) -> InstructionFailure:
        """A Rust panic: the program aborts without a code."""
        ctx.log(f"panicked: {reason}")
        return InstructionFailure("ProgramFailedToComplete")

    @staticmethod
    def not_emulated(ctx: InstructionContext, what: str) -> InstructionFailure:
        """Something the real program handles but this emulation does not price or run.

        Failing loudly (as a program abort) beats inventing a result.
        """
        ctx.log(f"local chain: {what} is not emulated")
        return InstructionFailure("ProgramFailedToComplete")

    def from_curve(
        self, ctx: InstructionContext, error: ProgramError | ProgramPanic | UnsupportedPool
    ) -> InstructionFailure:
        """Whatever `domain.curves` raised, as the instruction failure the program would end in."""
        if isinstance(error, ProgramError):
            return self.program_error(ctx, error)
        if isinstance(error, ProgramPanic):
            return self.panic(ctx, str(error))
        return self.not_emulated(ctx, error.reason)


def transfer_checked(
    ctx: InstructionContext,
    token_program: Pubkey,
    source: Pubkey,
    mint: Pubkey,
    decimals: int,
    dest: Pubkey,
    authority: Pubkey,
    amount: int,
    *,
    signed_by_pda: bool,
) -> None:
    """SPL `TransferChecked` (instruction 12) sent to `token_program`; `signed_by_pda` is
    `invoke_signed` with seeds that derive `authority`."""
    source_account = ctx.get(source)
    if source_account is None or source_account.owner != token_program:
        metas = [
            AccountMetaView(source, False, True),
            AccountMetaView(mint, False, False),
            AccountMetaView(dest, False, True),
            AccountMetaView(authority, True, False),
        ]
        data = bytes([12]) + struct.pack("<QB", amount, decimals)
        with ctx.invoke(token_program, metas, data, signer_pdas=[authority] if signed_by_pda else []):
            ctx.consume(TOKEN_TRANSFER_CHECKED_UNITS)
            raise InstructionFailure("IncorrectProgramId")
    token_transfer(
        ctx, source, dest, authority, amount, mint=mint, decimals=decimals, authority_is_pda=signed_by_pda
    )


def write_changed(
    ctx: InstructionContext, key: Pubkey, account: Account, before: bytes, after: bytes
) -> None:
    """Stage `account` with the bytes where `after` differs from `before` taken from `after`.

    `before`/`after` are our encodings of the account before and after the change.
    """
    merged = bytearray(account.data)
    for offset, (old, new) in enumerate(zip(before, after, strict=True)):
        if old != new:
            merged[offset] = new
    ctx.set(
        key, Account(account.lamports, bytes(merged), account.owner, account.executable, account.rent_epoch)
    )

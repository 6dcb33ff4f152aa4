"""The interface an emulated on-chain program is written against, and its SPL Token CPI.

An `EmulatedProgram` receives one top-level instruction as an `InstructionContext`:
the instruction's data and accounts (with the privileges the transaction gives them),
reads of those accounts, staged writes, the clock, a compute meter, and logs framed the
way the runtime frames a real program. It fails by raising `InstructionFailure`, which
carries an `InstructionError` that solders can render and parse, so the RPC reports it
like a validator (`{"InstructionError":[index, {"Custom":6005}]}`).

The runtime rules a real program cannot escape are enforced here, because a test that
passes against a laxer chain would fail on devnet: a program sees only the accounts
passed to it (`MissingAccount` otherwise), writes only those the transaction made
writable (`ReadonlyDataModified`), keeps the lamport total of the instruction
unchanged (`UnbalancedInstruction`) and cannot use more compute units than remain
(`ComputationalBudgetExceeded`). Staged writes reach the chain only if the program
returns normally. Not enforced: account ownership (the runtime lets a program change
only the data of accounts it owns); an emulation should write only its own accounts
and move tokens with `token_transfer`, as the real program would through a CPI.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import msgspec
from solders.account import Account
from solders.pubkey import Pubkey

from adapters.localnet.instruction_errors import InstructionError, InstructionFailure, instruction_error_text
from adapters.localnet.token_accounts import (
    TOKEN_PROGRAM_ID,
    TOKEN_PROGRAMS,
    read_mint,
    read_token_account_data,
    with_token_state,
)

__all__ = [
    "AccountMetaView",
    "ChainClock",
    "CpiFrame",
    "EmulatedProgram",
    "InnerInstructionRecord",
    "InstructionContext",
    "InstructionError",
    "InstructionFailure",
    "instruction_error_text",
    "token_transfer",
]

# What a cross-program invocation costs the caller before the callee runs (agave's
# `invoke_units` is about this; the local chain does not need it to the unit).
CPI_INVOKE_UNITS = 1_000
# Measured on LiteSVM's SPL Token program (solders 0.29): Transfer and TransferChecked.
TOKEN_TRANSFER_UNITS = 76
TOKEN_TRANSFER_CHECKED_UNITS = 105


@dataclass(frozen=True)
class ChainClock:
    """The Clock sysvar as an emulation needs it."""

    slot: int
    unix_timestamp: int
    epoch: int = 0


class AccountMetaView(NamedTuple):
    """One account of the instruction, with the privileges the transaction grants it."""

    pubkey: Pubkey
    is_signer: bool
    is_writable: bool


@dataclass(frozen=True)
class InnerInstructionRecord:
    """A CPI an emulated program made, for getTransaction's innerInstructions."""

    program_id: Pubkey
    accounts: tuple[Pubkey, ...]
    data: bytes
    stack_height: int


@dataclass
class CpiFrame:
    """What a CPI's callee hands back: its return data, if it sets any."""

    return_data: bytes | None = None


class EmulatedProgram(Protocol):
    """A program the chain runs in Python: every instruction to `program_id` goes to `execute`."""

    @property
    def program_id(self) -> Pubkey: ...

    def execute(self, ctx: InstructionContext) -> None:
        """Apply the instruction through `ctx`, or raise InstructionFailure."""
        ...


class InstructionContext:
    """One top-level instruction as an emulated program sees it.

    Reads see the program's own staged writes; writes are staged until the program
    returns. Built by the chain's executor, which also writes the outer
    invoke/consumed/success lines around `logs`.
    """

    def __init__(
        self,
        *,
        program_id: Pubkey,
        data: bytes,
        accounts: Sequence[AccountMetaView],
        load: Callable[[Pubkey], Account | None],
        clock: ChainClock,
        units_available: int,
        rent_exempt_minimum: Callable[[int], int],
    ) -> None:
        self.program_id = program_id
        self.data = data
        self.accounts: list[AccountMetaView] = list(accounts)
        self.clock = clock
        self.units_available = units_available
        self.units_consumed = 0
        self.logs: list[str] = []
        self.inner_instructions: list[InnerInstructionRecord] = []
        self.return_data = b""
        self._load = load
        self._rent = rent_exempt_minimum
        self._privileges = {m.pubkey: m for m in self.accounts}
        self._before: dict[Pubkey, Account | None] = {}
        self._staged: dict[Pubkey, Account] = {}
        self._depth = 1

    # -- accounts ------------------------------------------------------------------
    def account(self, index: int) -> Pubkey:
        """The pubkey of the instruction's account `index` (NotEnoughAccountKeys if absent)."""
        if index >= len(self.accounts):
            raise InstructionFailure("NotEnoughAccountKeys")
        return self.accounts[index].pubkey

    def is_signer(self, pubkey: Pubkey) -> bool:
        meta = self._privileges.get(pubkey)
        return meta is not None and meta.is_signer

    def is_writable(self, pubkey: Pubkey) -> bool:
        meta = self._privileges.get(pubkey)
        return meta is not None and meta.is_writable

    def get(self, pubkey: Pubkey) -> Account | None:
        """The account as this instruction sees it (None if it does not exist)."""
        if pubkey not in self._privileges:
            self.log_raw(f"Instruction references an unknown account {pubkey}")
            raise InstructionFailure("MissingAccount")
        if pubkey in self._staged:
            return self._staged[pubkey]
        return self._load(pubkey)

    def set(self, pubkey: Pubkey, account: Account) -> None:
        """Stage a write (an account with 0 lamports and no data is deleted at commit)."""
        if pubkey not in self._privileges:
            raise InstructionFailure("MissingAccount")
        if not self._privileges[pubkey].is_writable:
            raise InstructionFailure("ReadonlyDataModified")
        if pubkey not in self._before:
            self._before[pubkey] = self._load(pubkey)
        self._staged[pubkey] = account

    def rent_exempt_minimum(self, space: int) -> int:
        return self._rent(space)

    # -- meter, logs, return data ----------------------------------------------------
    def consume(self, units: int) -> None:
        """Charge compute units; fails the instruction once the transaction's budget is spent."""
        self.units_consumed += units
        if self.units_consumed > self.units_available:
            self.units_consumed = self.units_available
            raise InstructionFailure("ComputationalBudgetExceeded")

    def log(self, message: str) -> None:
        """A `msg!`: appears as "Program log: <message>"."""
        self.logs.append(f"Program log: {message}")

    def log_raw(self, line: str) -> None:
        """A log line exactly as given (runtime messages, "Program return: ...")."""
        self.logs.append(line)

    def set_return_data(self, data: bytes) -> None:
        self.return_data = bytes(data)
        self.log_raw(f"Program return: {self.program_id} {base64.b64encode(data).decode()}")

    @contextmanager
    def invoke(
        self,
        program_id: Pubkey,
        accounts: Sequence[AccountMetaView],
        data: bytes,
        *,
        signer_pdas: Sequence[Pubkey] = (),
        builtin: bool = False,
    ) -> Iterator[CpiFrame]:
        """Frame a CPI to `program_id` whose effect the caller applies inside the `with`.

        Checks the privileges the runtime checks (a writable or signer account must be so
        in the caller, or be one of the caller's `signer_pdas`; the callee must be one of
        the instruction's accounts), charges the CPI cost, records the inner instruction
        and writes the callee's invoke/consumed/return/success or failed lines around
        whatever is logged inside. Set `frame.return_data` for what the callee returns.
        """
        self.consume(CPI_INVOKE_UNITS)
        if program_id not in self._privileges:
            self.log_raw(f"Unknown program {program_id}")
            raise InstructionFailure("MissingAccount")
        for meta in accounts:
            if meta.is_writable and not self.is_writable(meta.pubkey):
                self.log_raw(f"{meta.pubkey}'s writable privilege escalated")
                raise InstructionFailure("PrivilegeEscalation")
            if meta.is_signer and not self.is_signer(meta.pubkey) and meta.pubkey not in signer_pdas:
                self.log_raw(f"{meta.pubkey}'s signer privilege escalated")
                raise InstructionFailure("PrivilegeEscalation")
        self._depth += 1
        self.inner_instructions.append(
            InnerInstructionRecord(program_id, tuple(m.pubkey for m in accounts), bytes(data), self._depth)
        )
        self.log_raw(f"Program {program_id} invoke [{self._depth}]")
        start, available = self.units_consumed, self.units_available - self.units_consumed

        def consumed_line() -> None:
            if not builtin:
                used = self.units_consumed - start
                self.log_raw(f"Program {program_id} consumed {used} of {available} compute units")

        frame = CpiFrame()
        try:
            yield frame
        except InstructionFailure as failure:
            consumed_line()
            self.log_raw(f"Program {program_id} failed: {failure.text}")
            raise
        finally:
            self._depth -= 1
        consumed_line()
        if frame.return_data is not None:
            self.log_raw(f"Program return: {program_id} {base64.b64encode(frame.return_data).decode()}")
        self.log_raw(f"Program {program_id} success")

    # -- for the executor ------------------------------------------------------------
    def staged_writes(self) -> dict[Pubkey, Account]:
        """The writes to commit, after checking the runtime's lamport-balance rule."""
        before = sum(a.lamports for a in self._before.values() if a is not None)
        after = sum(a.lamports for a in self._staged.values())
        if before != after:
            raise InstructionFailure("UnbalancedInstruction")
        return dict(self._staged)


def token_transfer(
    ctx: InstructionContext,
    source: Pubkey,
    dest: Pubkey,
    authority: Pubkey,
    amount: int,
    *,
    mint: Pubkey | None = None,
    decimals: int | None = None,
    authority_is_pda: bool = False,
) -> None:
    """A CPI to SPL Token `Transfer` (or `TransferChecked` when `decimals` is given, with `mint`).

    Applies the token program's rules in its order (frozen → Custom(17), insufficient
    funds → Custom(1), mint mismatch → Custom(3), decimals → Custom(18), owner or
    delegate mismatch → Custom(4)), moves the lamports of wrapped-SOL accounts with the
    amount, and frames the CPI in the logs. `authority_is_pda` stands for
    `invoke_signed` with the caller's seeds (not checked); otherwise the authority must
    have signed the transaction. Token-2022 accounts are handled by their base state
    only: extensions (transfer fees, hooks) are not applied.
    """
    if (decimals is None) != (mint is None):
        raise ValueError("TransferChecked needs both mint and decimals")
    if not 0 <= amount < 2**64:
        raise InstructionFailure("InvalidArgument")
    source_account = ctx.get(source)
    program_id = (
        source_account.owner
        if source_account is not None and source_account.owner in TOKEN_PROGRAMS
        else TOKEN_PROGRAM_ID
    )
    checked = decimals is not None
    if checked and mint is not None and decimals is not None:
        data = bytes([12]) + struct.pack("<QB", amount, decimals)
        metas = [
            AccountMetaView(source, False, True),
            AccountMetaView(mint, False, False),
            AccountMetaView(dest, False, True),
            AccountMetaView(authority, True, False),
        ]
    else:
        data = bytes([3]) + struct.pack("<Q", amount)
        metas = [
            AccountMetaView(source, False, True),
            AccountMetaView(dest, False, True),
            AccountMetaView(authority, True, False),
        ]
    pdas = [authority] if authority_is_pda else []
    with ctx.invoke(program_id, metas, data, signer_pdas=pdas):
        ctx.consume(TOKEN_TRANSFER_CHECKED_UNITS if checked else TOKEN_TRANSFER_UNITS)
        _apply_transfer(ctx, program_id, source, dest, authority, amount, mint, decimals)


def _token_error(ctx: InstructionContext, code: int, message: str) -> InstructionFailure:
    ctx.log(f"Error: {message}")
    return InstructionFailure(code)


def _apply_transfer(
    ctx: InstructionContext,
    program_id: Pubkey,
    source: Pubkey,
    dest: Pubkey,
    authority: Pubkey,
    amount: int,
    mint: Pubkey | None,
    decimals: int | None,
) -> None:
    source_account, dest_account = ctx.get(source), ctx.get(dest)
    if source_account is None or dest_account is None:
        raise InstructionFailure("InvalidAccountData")
    source_state = read_token_account_data(source_account.data)
    dest_state = read_token_account_data(dest_account.data)
    if source_state is None or dest_state is None:
        raise InstructionFailure("InvalidAccountData")
    if source_state.state == 0 or dest_state.state == 0:
        ctx.log("Error: UninitializedAccount")
        raise InstructionFailure("UninitializedAccount")
    if source_state.is_frozen or dest_state.is_frozen:
        raise _token_error(ctx, 17, "Account is frozen")
    if source_state.amount < amount:
        raise _token_error(ctx, 1, "insufficient funds")
    if source_state.mint != dest_state.mint:
        raise _token_error(ctx, 3, "Account not associated with this Mint")
    if mint is not None:
        if mint != source_state.mint:
            raise _token_error(ctx, 3, "Account not associated with this Mint")
        mint_state = read_mint(ctx.get(mint))
        if mint_state is None:
            raise InstructionFailure("InvalidAccountData")
        if mint_state.decimals != decimals:
            raise _token_error(ctx, 18, "decimals different from the Mint decimals")
    self_transfer = source == dest
    delegated = source_state.delegated_amount
    delegate = source_state.delegate
    if delegate is not None and delegate == authority:
        if delegated < amount:
            raise _token_error(ctx, 1, "insufficient funds")
        if not self_transfer:
            delegated -= amount
            if delegated == 0:
                delegate = None
    elif authority != source_state.owner:
        raise _token_error(ctx, 4, "owner does not match")
    for account in (source_account, dest_account):
        if account.owner != program_id:
            raise InstructionFailure(
                "IncorrectProgramId" if self_transfer or amount == 0 else "ExternalAccountDataModified"
            )
    if self_transfer:
        return
    if dest_state.amount + amount >= 2**64:
        raise _token_error(ctx, 14, "Operation overflowed")
    new_source = msgspec.structs.replace(
        source_state, amount=source_state.amount - amount, delegate=delegate, delegated_amount=delegated
    )
    new_dest = msgspec.structs.replace(dest_state, amount=dest_state.amount + amount)
    moved = amount if source_state.is_native is not None else 0
    ctx.set(source, with_token_state(source_account, new_source, lamports=source_account.lamports - moved))
    ctx.set(dest, with_token_state(dest_account, new_dest, lamports=dest_account.lamports + moved))

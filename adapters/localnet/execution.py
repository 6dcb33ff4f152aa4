"""Split execution: LiteSVM runs the ordinary instructions, Python the emulated ones.

A transaction's instructions are cut into runs. Consecutive ordinary instructions go
to LiteSVM as one sub-transaction paid by a house account (LiteSVM has signature
checks off, so the user's signers get fake signatures, fresh per run); an instruction
to an emulated program runs in Python through an `InstructionContext`; ComputeBudget
instructions are applied by the executor itself (150 units each, as LiteSVM charges).

Atomicity: every account the message references (and the house) is saved before the
first run and put back on any failure, since LiteSVM has no snapshots; the fee payer
is then charged the fee alone, as a real chain does. The fee is charged once, by the
original transaction's rule, never per run.

Compute units: each LiteSVM run is given exactly what remains of the transaction's
limit (a SetComputeUnitLimit is prepended and its own 150 units are taken off again),
and each emulation's meter stops at the same remainder, so exceeding the limit fails
at the instruction that exceeds it, as on a validator.

Known differences from a validator: rent-state checks happen at the end of each run,
not of the transaction; a CPI from a real program into an emulated one is impossible
(LiteSVM cannot see emulated programs); lookup-table deactivation is not checked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from solders.account import Account
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import AccountMeta, Instruction
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import (
    InstructionErrorFieldless,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorType,
)

from adapters.localnet.compute_budget import (
    COMPUTE_BUDGET_INSTRUCTION_UNITS,
    MAX_COMPUTE_UNIT_LIMIT,
    ComputeBudget,
    ComputeBudgetError,
    parse_compute_budget,
)
from adapters.localnet.emulation import (
    ChainClock,
    EmulatedProgram,
    InstructionContext,
    InstructionFailure,
)
from adapters.localnet.message_view import InstructionView, MessageRefused, MessageView, resolve_message
from adapters.localnet.token_accounts import (
    COMPUTE_BUDGET_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    read_mint,
    read_token_account,
)

logger = logging.getLogger(__name__)

_DELETED = Account(0, b"", Pubkey.default())
_CB_LOG_PREFIX = f"Program {COMPUTE_BUDGET_PROGRAM_ID} "


class Mode(Enum):
    """What happens to the state after execution."""

    SIMULATE = "simulate"  # always put everything back
    LAND = "land"  # keep a success; keep only the fee of a failure
    LAND_IF_OK = "land_if_ok"  # keep a success; put everything back after a failure (preflight)


@dataclass(frozen=True)
class TokenBalance:
    account_index: int
    mint: Pubkey
    owner: Pubkey
    program_id: Pubkey
    amount: int
    decimals: int


@dataclass(frozen=True)
class InnerInstruction:
    program_id_index: int
    accounts: tuple[int, ...]
    data: bytes
    stack_height: int | None


@dataclass
class ExecutionResult:
    """Everything getTransaction and simulateTransaction report about one execution."""

    err: TransactionErrorType | None
    landed: bool  # False: refused before execution, nothing charged and nothing kept
    fee: int = 0
    unit_price: int = 0
    units_consumed: int = 0
    logs: list[str] = field(default_factory=list)
    return_data: tuple[Pubkey, bytes] | None = None
    inner_instructions: dict[int, list[InnerInstruction]] = field(default_factory=dict)
    view: MessageView | None = None
    pre_balances: list[int] = field(default_factory=list)
    post_balances: list[int] = field(default_factory=list)
    pre_token_balances: list[TokenBalance] = field(default_factory=list)
    post_token_balances: list[TokenBalance] = field(default_factory=list)
    post_accounts: dict[Pubkey, Account | None] = field(default_factory=dict)


class _Failed(Exception):
    def __init__(self, error: TransactionErrorType) -> None:
        super().__init__(str(error))
        self.error = error


class Executor:
    """Runs transactions against one LiteSVM with a registry of emulated programs."""

    def __init__(self, svm: LiteSVM, house: Pubkey, programs: Mapping[Pubkey, EmulatedProgram]) -> None:
        self._svm = svm
        self._house = house
        self._programs = dict(programs)

    def execute(
        self, tx: VersionedTransaction, *, clock: ChainClock, mode: Mode, inspect: Sequence[Pubkey] = ()
    ) -> ExecutionResult:
        """Execute a transaction whose signatures, blockhash and novelty the caller checked."""
        message = tx.message
        if not isinstance(message, Message | MessageV0):
            return ExecutionResult(err=TransactionErrorFieldless.UnsupportedVersion, landed=False)
        try:
            view = resolve_message(message, self._svm.get_account)
            budget = parse_compute_budget([(ix.program_id, ix.data) for ix in view.instructions])
        except (MessageRefused, ComputeBudgetError) as refused:
            return ExecutionResult(err=refused.error, landed=False)
        fee = budget.fee(view.num_signatures)
        refusal = self._refusal(view, fee)
        if refusal is not None:
            return ExecutionResult(err=refusal, landed=False, fee=fee, view=view)

        snapshot = {key: self._svm.get_account(key) for key in {*view.keys, self._house}}
        result = ExecutionResult(err=None, landed=True, fee=fee, unit_price=budget.unit_price, view=view)
        result.pre_balances = [_lamports(snapshot[key]) for key in view.keys]
        result.pre_token_balances = self._token_balances(view, snapshot)
        self._charge(view.payer, snapshot[view.payer], fee)
        try:
            self._run(view, budget, clock, result)
        except _Failed as failed:
            result.err = failed.error
        if result.err is not None:
            self._restore(snapshot)
            if mode is not Mode.LAND_IF_OK:
                self._charge(view.payer, snapshot[view.payer], fee)
        else:
            self._svm.set_account(self._house, snapshot[self._house] or _DELETED)
        after = {key: self._svm.get_account(key) for key in view.keys}
        result.post_balances = [_lamports(after[key]) for key in view.keys]
        result.post_token_balances = self._token_balances(view, after)
        result.post_accounts = {key: self._svm.get_account(key) for key in inspect}
        if mode is Mode.SIMULATE:
            self._restore(snapshot)
        elif mode is Mode.LAND_IF_OK and result.err is not None:
            result.landed = False
        return result

    # -- checks before anything runs -------------------------------------------------
    def _refusal(self, view: MessageView, fee: int) -> TransactionErrorType | None:
        for ix in view.instructions:
            if ix.program_id in self._programs or ix.program_id == COMPUTE_BUDGET_PROGRAM_ID:
                continue
            program = self._svm.get_account(ix.program_id)
            if program is None or not program.executable:
                return TransactionErrorFieldless.InvalidProgramForExecution
        payer = self._svm.get_account(view.payer)
        if payer is None:
            return TransactionErrorFieldless.AccountNotFound
        if payer.owner != SYSTEM_PROGRAM_ID or payer.data:
            return TransactionErrorFieldless.InvalidAccountForFee
        if payer.lamports < fee:
            return TransactionErrorFieldless.InsufficientFundsForFee
        minimum = self._svm.minimum_balance_for_rent_exemption(0)
        if payer.lamports >= minimum and 0 < payer.lamports - fee < minimum:
            return TransactionErrorInsufficientFundsForRent(0)
        return None

    # -- the runs --------------------------------------------------------------------
    def _run(
        self, view: MessageView, budget: ComputeBudget, clock: ChainClock, result: ExecutionResult
    ) -> None:
        pending: list[int] = []
        for index, ix in enumerate(view.instructions):
            if ix.program_id in self._programs or ix.program_id == COMPUTE_BUDGET_PROGRAM_ID:
                if pending:
                    self._run_svm(view, pending, budget, result)
                    pending = []
                if ix.program_id == COMPUTE_BUDGET_PROGRAM_ID:
                    self._run_compute_budget(index, budget, result)
                else:
                    self._run_emulated(view, index, ix, budget, clock, result)
            else:
                pending.append(index)
        if pending:
            self._run_svm(view, pending, budget, result)

    def _run_compute_budget(self, index: int, budget: ComputeBudget, result: ExecutionResult) -> None:
        result.logs.append(f"{_CB_LOG_PREFIX}invoke [1]")
        if budget.unit_limit - result.units_consumed < COMPUTE_BUDGET_INSTRUCTION_UNITS:
            result.units_consumed = budget.unit_limit
            result.logs.append(f"{_CB_LOG_PREFIX}failed: Computational budget exceeded")
            raise _Failed(
                TransactionErrorInstructionError(index, InstructionErrorFieldless.ComputationalBudgetExceeded)
            )
        result.units_consumed += COMPUTE_BUDGET_INSTRUCTION_UNITS
        result.logs.append(f"{_CB_LOG_PREFIX}success")

    def _run_svm(
        self, view: MessageView, indexes: list[int], budget: ComputeBudget, result: ExecutionResult
    ) -> None:
        remaining = budget.unit_limit - result.units_consumed
        prelude_units = COMPUTE_BUDGET_INSTRUCTION_UNITS * (1 + len(budget.passthrough))
        prelude = [
            set_compute_unit_limit(min(remaining + prelude_units, MAX_COMPUTE_UNIT_LIMIT)),
            *budget.passthrough,
        ]
        instructions = [
            Instruction(
                view.instructions[i].program_id,
                view.instructions[i].data,
                [AccountMeta(m.pubkey, m.is_signer, m.is_writable) for m in view.metas(view.instructions[i])],
            )
            for i in indexes
        ]
        message = MessageV0.try_compile(self._house, prelude + instructions, [], self._svm.latest_blockhash())
        signatures = [Signature.new_unique() for _ in range(message.header.num_required_signatures)]
        outcome = self._svm.send_transaction(VersionedTransaction.populate(message, signatures))
        meta = outcome.meta() if isinstance(outcome, FailedTransactionMetadata) else outcome
        skip = len(prelude)
        logs = list(meta.logs())
        dropped = 0
        while dropped < 2 * skip and logs and logs[0].startswith(_CB_LOG_PREFIX):
            logs.pop(0)
            dropped += 1
        result.logs += logs
        result.units_consumed += max(0, meta.compute_units_consumed() - prelude_units)
        sub_keys = list(message.account_keys)
        positions = {key: i for i, key in enumerate(view.keys)}
        for j, group in enumerate(meta.inner_instructions()[skip:]):
            mapped = []
            for inner in group:
                compiled = inner.instruction()
                mapped.append(
                    InnerInstruction(
                        positions.get(sub_keys[compiled.program_id_index], 0),
                        tuple(positions.get(sub_keys[a], 0) for a in compiled.accounts),
                        bytes(compiled.data),
                        inner.stack_height(),
                    )
                )
            if mapped:
                result.inner_instructions[indexes[j]] = mapped
        returned = meta.return_data()
        result.return_data = (returned.program_id, bytes(returned.data)) if returned.data else None
        if isinstance(outcome, FailedTransactionMetadata):
            raise _Failed(self._map_error(outcome.err(), indexes, skip, sub_keys, positions))

    @staticmethod
    def _map_error(
        error: TransactionErrorType,
        indexes: list[int],
        skip: int,
        sub_keys: list[Pubkey],
        positions: dict[Pubkey, int],
    ) -> TransactionErrorType:
        """A sub-transaction's error in terms of the original transaction."""
        if isinstance(error, TransactionErrorInstructionError):
            return TransactionErrorInstructionError(indexes[max(0, error.index - skip)], error.err)
        if isinstance(error, TransactionErrorInsufficientFundsForRent):
            return TransactionErrorInsufficientFundsForRent(positions.get(sub_keys[error.account_index], 0))
        return error

    def _run_emulated(
        self,
        view: MessageView,
        index: int,
        ix: InstructionView,
        budget: ComputeBudget,
        clock: ChainClock,
        result: ExecutionResult,
    ) -> None:
        remaining = budget.unit_limit - result.units_consumed
        program = self._programs[ix.program_id]
        ctx = InstructionContext(
            program_id=ix.program_id,
            data=ix.data,
            accounts=view.metas(ix),
            load=self._svm.get_account,
            clock=clock,
            units_available=remaining,
            rent_exempt_minimum=self._svm.minimum_balance_for_rent_exemption,
        )
        failure: InstructionFailure | None = None
        writes: dict[Pubkey, Account] = {}
        try:
            program.execute(ctx)
            writes = ctx.staged_writes()
        except InstructionFailure as raised:
            failure = raised
        except Exception as crash:  # an emulation bug: fail the instruction, keep serving
            logger.exception("emulated program %s crashed", ix.program_id)
            ctx.log_raw(f"Program log: emulation crashed: {crash!r}")
            failure = InstructionFailure("ProgramFailedToComplete")
        result.logs.append(f"Program {ix.program_id} invoke [1]")
        result.logs += ctx.logs
        result.logs.append(
            f"Program {ix.program_id} consumed {ctx.units_consumed} of {remaining} compute units"
        )
        result.units_consumed += ctx.units_consumed
        positions = {key: i for i, key in enumerate(view.keys)}
        inner = [
            InnerInstruction(
                positions[record.program_id] if record.program_id in positions else 0,
                tuple(positions.get(key, 0) for key in record.accounts),
                record.data,
                record.stack_height,
            )
            for record in ctx.inner_instructions
        ]
        if inner:
            result.inner_instructions[index] = inner
        if failure is not None:
            result.logs.append(f"Program {ix.program_id} failed: {failure.text}")
            raise _Failed(TransactionErrorInstructionError(index, failure.error))
        result.logs.append(f"Program {ix.program_id} success")
        result.return_data = (ix.program_id, ctx.return_data) if ctx.return_data else None
        for key, account in writes.items():
            minimum = self._svm.minimum_balance_for_rent_exemption(len(account.data))
            if 0 < account.lamports < minimum:
                raise _Failed(TransactionErrorInsufficientFundsForRent(positions[key]))
        for key, account in writes.items():
            self._svm.set_account(key, account)

    # -- state -----------------------------------------------------------------------
    def _charge(self, payer: Pubkey, before: Account | None, fee: int) -> None:
        if before is not None:
            self._svm.set_account(
                payer,
                Account(
                    before.lamports - fee, before.data, before.owner, before.executable, before.rent_epoch
                ),
            )

    def _restore(self, snapshot: Mapping[Pubkey, Account | None]) -> None:
        for key, account in snapshot.items():
            if account is not None and account.executable:
                continue
            if self._svm.get_account(key) != account:
                self._svm.set_account(key, account or _DELETED)

    def _token_balances(
        self, view: MessageView, accounts: Mapping[Pubkey, Account | None]
    ) -> list[TokenBalance]:
        balances = []
        decimals: dict[Pubkey, int | None] = {}
        for index, key in enumerate(view.keys):
            account = accounts.get(key)
            state = read_token_account(account)
            if state is None or account is None:
                continue
            if state.mint not in decimals:
                mint = read_mint(self._svm.get_account(state.mint))
                decimals[state.mint] = mint.decimals if mint is not None else None
            mint_decimals = decimals[state.mint]
            if mint_decimals is not None:
                balances.append(
                    TokenBalance(index, state.mint, state.owner, account.owner, state.amount, mint_decimals)
                )
        return balances


def _lamports(account: Account | None) -> int:
    return account.lamports if account is not None else 0

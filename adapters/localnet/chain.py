"""`LocalChain`: one LiteSVM made to behave like a validator to its clients.

LiteSVM runs with its own signature and blockhash checks off (split execution gives
sub-transactions fake signatures); the chain does both itself, on the original
transaction:

- Slots and blockhashes: `tick()` advances one slot (the RPC server calls it every
  `slot_ms`), sets LiteSVM's clock (slot; unix_timestamp from the wall clock unless
  `set_unix_timestamp` overrides it) and issues a new blockhash. Every slot has a
  block, so the block height equals the slot (genesis is slot 0, height 0). A blockhash
  issued at height h stays valid while the height is at most h + 150 (its
  lastValidBlockHeight); after that, or if it was never issued, a transaction using it
  is refused with BlockhashNotFound.
- Sending: preflight (unless skipped) verifies signatures (SignatureVerificationFailed)
  and simulates (PreflightFailure with the result); a transaction that passes lands at
  once in the current slot, unless a fault drops or holds it. A skipped preflight
  returns the signature even if the transaction then fails, is refused, or carries a
  bad signature (then it never lands), as a validator does.
- Landed transactions (successes and failures, whose fee is charged) are kept in the
  history with slot, block time, fee, logs, units and balances; a second landing of a
  signature is refused with AlreadyProcessed.

Not thread-safe (nor is LiteSVM): call it from one thread, the server's event loop.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from solders.account import Account
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorFieldless, TransactionErrorType

from adapters.localnet.compute_budget import ComputeBudgetError, parse_compute_budget
from adapters.localnet.emulation import ChainClock, EmulatedProgram
from adapters.localnet.execution import ExecutionResult, Executor, Mode
from adapters.localnet.faults import Faults
from adapters.localnet.history import PrioritizationFees, TransactionHistory, TransactionRecord
from adapters.localnet.message_view import MessageRefused, resolve_message
from adapters.localnet.token_accounts import NATIVE_MINT, SYSTEM_PROGRAM_ID, TOKEN_PROGRAM_ID
from adapters.solana.token_layouts import MINT_SIZE, Mint, encode_mint

MAX_PROCESSING_AGE = 150
SLOTS_PER_EPOCH = 432_000
_FUNDS = 10**17  # lamports of the house, which pays for the LiteSVM runs


class SignatureVerificationFailed(Exception):
    """The transaction's signatures do not verify (the RPC answers -32003)."""


class InvalidTransaction(Exception):
    """The transaction does not sanitize (the RPC answers -32602)."""


class PreflightFailure(Exception):
    """The preflight simulation failed (the RPC answers -32002 with the result)."""

    def __init__(self, result: ExecutionResult) -> None:
        super().__init__(f"Transaction simulation failed: {result.err}")
        self.result = result


class AirdropFailed(Exception):
    """The faucet's transfer failed (e.g. too few lamports for a new account's rent)."""


@dataclass
class _Held:
    due: float
    transaction: VersionedTransaction


class LocalChain:
    """A validator-like chain over one in-process LiteSVM."""

    def __init__(
        self,
        *,
        emulated_programs: Iterable[EmulatedProgram] = (),
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        history_limit: int = 100_000,
    ) -> None:
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._svm = LiteSVM().with_sigverify(False).with_blockhash_check(False).with_transaction_history(0)
        rent = self._svm.minimum_balance_for_rent_exemption(MINT_SIZE)
        native_mint = encode_mint(Mint(None, 0, 9, True, None))
        self._svm.set_account(NATIVE_MINT, Account(rent, native_mint, TOKEN_PROGRAM_ID, False, 0))
        self._house = Keypair()
        self._svm.set_account(self._house.pubkey(), Account(_FUNDS, b"", SYSTEM_PROGRAM_ID, False, 0))
        self._programs = {program.program_id: program for program in emulated_programs}
        self._executor = Executor(self._svm, self._house.pubkey(), self._programs)
        self.history = TransactionHistory(history_limit)
        self.prioritization_fees = PrioritizationFees()
        self.faults = Faults()
        self._held: deque[_Held] = deque()
        self._unix_override: int | None = None
        self._slot = 0
        self._slot_time = 0  # the unix time of the current slot (set with the Clock sysvar)
        self._blockhashes: dict[Hash, int] = {}
        self.genesis_hash = Hash(os.urandom(32))
        self._latest = self._issue_blockhash()
        self._sync_clock()

    # -- time ------------------------------------------------------------------------
    @property
    def slot(self) -> int:
        return self._slot

    @property
    def block_height(self) -> int:
        return self._slot

    @property
    def latest_blockhash(self) -> tuple[Hash, int]:
        """The newest blockhash and its lastValidBlockHeight."""
        blockhash = self._latest
        return blockhash, self._blockhashes[blockhash]

    @property
    def clock(self) -> ChainClock:
        # The slot's time, as the Clock sysvar holds it: what a program (and a quote reading
        # the sysvar) sees for the whole slot, not the wall clock at the instant it runs.
        return ChainClock(self._slot, self._slot_time, self._slot // SLOTS_PER_EPOCH)

    def is_blockhash_valid(self, blockhash: Hash) -> bool:
        last_valid = self._blockhashes.get(blockhash)
        return last_valid is not None and self.block_height <= last_valid

    def tick(self) -> None:
        """Advance one slot: a new blockhash, the clock, and held transactions that are due land."""
        self._slot += 1
        self._issue_blockhash()
        self._sync_clock()
        self._land_due()

    def advance_slots(self, count: int) -> None:
        """Advance `count` slots at once (only the last 151 issue blockhashes that matter)."""
        if count > MAX_PROCESSING_AGE + 1:
            self._slot += count - (MAX_PROCESSING_AGE + 1)
            count = MAX_PROCESSING_AGE + 1
        for _ in range(count):
            self.tick()

    def set_unix_timestamp(self, timestamp: int | None) -> None:
        """Pin the clock's unix_timestamp (None: follow the wall clock again)."""
        self._unix_override = timestamp
        self._sync_clock()

    def _unix_timestamp(self) -> int:
        return self._unix_override if self._unix_override is not None else int(self._wall_clock())

    def _issue_blockhash(self) -> Hash:
        blockhash = Hash(os.urandom(32))
        self._blockhashes[blockhash] = self.block_height + MAX_PROCESSING_AGE
        self._latest = blockhash
        for old in [h for h, last in self._blockhashes.items() if last < self.block_height]:
            del self._blockhashes[old]
        return blockhash

    def _sync_clock(self) -> None:
        self._svm.warp_to_slot(self._slot)
        clock = self._svm.get_clock()
        clock.slot = self._slot
        clock.epoch = self._slot // SLOTS_PER_EPOCH
        self._slot_time = self._unix_timestamp()
        clock.unix_timestamp = self._slot_time
        self._svm.set_clock(clock)

    # -- transactions ----------------------------------------------------------------
    def simulate(
        self,
        tx: VersionedTransaction,
        *,
        sig_verify: bool = False,
        replace_recent_blockhash: bool = False,
        accounts: Sequence[Pubkey] = (),
    ) -> ExecutionResult:
        """Execute without keeping anything; `accounts` are reported as they would be after."""
        self._sanitize(tx)
        if sig_verify and not all(tx.verify_with_results()):
            raise SignatureVerificationFailed()
        refusal = self._refusal(tx, check_blockhash=not replace_recent_blockhash)
        if refusal is not None:
            return ExecutionResult(err=refusal, landed=False)
        return self._executor.execute(tx, clock=self.clock, mode=Mode.SIMULATE, inspect=accounts)

    def send(self, tx: VersionedTransaction, *, skip_preflight: bool = False) -> Signature:
        """Submit like sendTransaction; the signature, or an exception from the preflight."""
        self._sanitize(tx)
        signature = tx.signatures[0]
        faulted = self.faults.active
        if not skip_preflight:
            if not all(tx.verify_with_results()):
                raise SignatureVerificationFailed()
            if not faulted:
                refusal = self._refusal(tx, check_blockhash=True)
                result = (
                    ExecutionResult(err=refusal, landed=False)
                    if refusal is not None
                    else self._executor.execute(tx, clock=self.clock, mode=Mode.LAND_IF_OK)
                )
                if result.err is not None:
                    raise PreflightFailure(result)
                self._record(signature, tx, result)
                return signature
            preflight = self.simulate(tx)
            if preflight.err is not None:
                raise PreflightFailure(preflight)
        if self.faults.take_loss(signature) or self.faults.take_drop():
            return signature
        if self.faults.hold_ms > 0:
            self._held.append(_Held(self._monotonic() + self.faults.hold_ms / 1000, tx))
            return signature
        self._land(tx)
        return signature

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """A faucet transfer that lands at once (faults do not apply).

        Each airdrop comes from a fresh faucet account funded with exactly the amount
        and the fee, so two equal airdrops in one slot still have distinct signatures.
        """
        faucet = Keypair()
        fee = parse_compute_budget([(SYSTEM_PROGRAM_ID, b"")]).fee(1)
        self._svm.set_account(faucet.pubkey(), Account(lamports + fee, b"", SYSTEM_PROGRAM_ID, False, 0))
        ix = transfer(TransferParams(from_pubkey=faucet.pubkey(), to_pubkey=pubkey, lamports=lamports))
        tx = VersionedTransaction(MessageV0.try_compile(faucet.pubkey(), [ix], [], self._latest), [faucet])
        result = self._executor.execute(tx, clock=self.clock, mode=Mode.LAND)
        if result.err is not None:
            self._svm.set_account(faucet.pubkey(), Account(0, b"", SYSTEM_PROGRAM_ID, False, 0))
            raise AirdropFailed(str(result.err))
        self._record(tx.signatures[0], tx, result)
        return tx.signatures[0]

    def fee_for_message(self, message: Message | MessageV0) -> int | None:
        """The fee the message would pay, or None if its blockhash is not valid."""
        if not self.is_blockhash_valid(message.recent_blockhash):
            return None
        try:
            budget = parse_compute_budget(
                [(message.account_keys[ix.program_id_index], bytes(ix.data)) for ix in message.instructions]
            )
        except (ComputeBudgetError, IndexError):
            return None
        return budget.fee(message.header.num_required_signatures)

    def _sanitize(self, tx: VersionedTransaction) -> None:
        if not isinstance(tx.message, Message | MessageV0):
            raise InvalidTransaction("invalid transaction: unsupported message version")
        try:
            tx.sanitize()
        except Exception as error:
            raise InvalidTransaction(f"invalid transaction: {error}") from None
        if len(tx.signatures) != tx.message.header.num_required_signatures:
            raise InvalidTransaction("invalid transaction: signature count does not match the message")

    def _refusal(self, tx: VersionedTransaction, *, check_blockhash: bool) -> TransactionErrorType | None:
        if check_blockhash and not self.is_blockhash_valid(tx.message.recent_blockhash):
            return TransactionErrorFieldless.BlockhashNotFound
        if tx.signatures[0] in self.history:
            return TransactionErrorFieldless.AlreadyProcessed
        return None

    def _land(self, tx: VersionedTransaction) -> None:
        """Land a sent transaction as a leader would, or drop it silently."""
        if not all(tx.verify_with_results()) or self._refusal(tx, check_blockhash=True) is not None:
            return
        if self.faults.front_runs:
            try:
                view = resolve_message(tx.message, self._svm.get_account)  # type: ignore[arg-type]
            except MessageRefused:
                view = None
            action = self.faults.take_front_run(set(view.writable_keys())) if view is not None else None
            if action is not None:
                action()
        result = self._executor.execute(tx, clock=self.clock, mode=Mode.LAND)
        if result.landed:
            self._record(tx.signatures[0], tx, result)

    def _land_due(self) -> None:
        now = self._monotonic()
        waiting: deque[_Held] = deque()
        while self._held:
            held = self._held.popleft()
            if held.due <= now:
                self._land(held.transaction)
            else:
                waiting.append(held)
        self._held = waiting

    def _record(self, signature: Signature, tx: VersionedTransaction, result: ExecutionResult) -> None:
        self.history.add(TransactionRecord(signature, self._slot, self._slot_time, tx, result))
        if result.view is not None:
            self.prioritization_fees.record(self._slot, result.unit_price, result.view.writable_keys())

    # -- queries and state -----------------------------------------------------------
    def transaction(self, signature: Signature) -> TransactionRecord | None:
        return self.history.get(signature)

    def landed_signatures(self, signer: Pubkey | None = None) -> list[Signature]:
        """Landed signatures in landing order, optionally only those `signer` signed."""
        return self.history.signatures(signer)

    def recent_prioritization_fees(self, addresses: Iterable[Pubkey] = ()) -> list[tuple[int, int]]:
        """(slot, micro-lamports per unit) for each of the last 150 slots."""
        return self.prioritization_fees.recent(self._slot, addresses)

    def get_account(self, pubkey: Pubkey) -> Account | None:
        return self._svm.get_account(pubkey)

    def set_account(self, pubkey: Pubkey, account: Account) -> None:
        self._svm.set_account(pubkey, account)

    def get_balance(self, pubkey: Pubkey) -> int:
        account = self._svm.get_account(pubkey)
        return account.lamports if account is not None else 0

    def minimum_balance_for_rent_exemption(self, space: int) -> int:
        return self._svm.minimum_balance_for_rent_exemption(space)

    # -- faults ----------------------------------------------------------------------
    def drop_next(self, count: int) -> None:
        self.faults.drop_next(count)

    def hold_landing(self, ms: int) -> None:
        self.faults.hold_landing(ms)

    def outage(self, ms: int) -> None:
        self.faults.outage(self._monotonic(), ms)

    def in_outage(self) -> bool:
        return self.faults.in_outage(self._monotonic())

    def reset_faults(self) -> None:
        """All faults off; held transactions land on the next tick."""
        self.faults.reset()
        for held in self._held:
            held.due = 0.0

"""The local chain in-process: split execution stays atomic, fees, blockhashes, faults, and
the emulations (ATA, token_transfer) against the real programs LiteSVM ships.

Every test builds its own `LocalChain` (about 12 ms) so none depends on another.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest
from solders.account import Account
from solders.address_lookup_table_account import ID as ADDRESS_LOOKUP_TABLE_PROGRAM_ID
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    InstructionErrorFieldless,
    TransactionErrorDuplicateInstruction,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)
from spl.token.instructions import (
    close_account,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    sync_native,
)
from spl.token.models import CloseAccountParams, SyncNativeParams

from adapters.localnet.ata import AssociatedTokenAccountProgram, associated_token_address
from adapters.localnet.chain import LocalChain, PreflightFailure, SignatureVerificationFailed
from adapters.localnet.emulation import (
    EmulatedProgram,
    InstructionContext,
    InstructionFailure,
    token_transfer,
)
from adapters.localnet.execution import ExecutionResult
from adapters.localnet.rpc_encoding import error_json
from adapters.localnet.token_accounts import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    NATIVE_MINT,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    read_token_account,
)
from adapters.solana.token_layouts import (
    ACCOUNT_STATE_FROZEN,
    ACCOUNT_STATE_INITIALIZED,
    Mint,
    TokenAccount,
    encode_mint,
    encode_token_account,
)

SOL = 10**9
TOY_PROGRAM_ID = Pubkey.from_string("Toy1111111111111111111111111111111111111111")
VAULT_SEED = b"vault"


class ToyProgram:
    """A test program: 0 pays out of its vault (signed by its PDA), 1 takes a user deposit,
    2 fails with Custom(6005), 3 burns compute units, 4 transfers checked (authority signs)."""

    program_id = TOY_PROGRAM_ID

    def execute(self, ctx: InstructionContext) -> None:
        op, amount = ctx.data[0], int.from_bytes(ctx.data[1:9], "little")
        ctx.consume(500)
        if op == 0:
            vault, user_token, authority = ctx.account(0), ctx.account(1), ctx.account(2)
            if Pubkey.find_program_address([VAULT_SEED], TOY_PROGRAM_ID)[0] != authority:
                raise InstructionFailure("InvalidSeeds")
            ctx.log(f"paying {amount}")
            token_transfer(ctx, vault, user_token, authority, amount, authority_is_pda=True)
        elif op == 1:
            token_transfer(ctx, ctx.account(0), ctx.account(1), ctx.account(2), amount)
        elif op == 2:
            ctx.log("refusing")
            raise InstructionFailure(6005)
        elif op == 3:
            ctx.consume(amount)
        elif op == 4:
            token_transfer(
                ctx,
                ctx.account(0),
                ctx.account(2),
                ctx.account(3),
                amount,
                mint=ctx.account(1),
                decimals=ctx.data[9],
            )
        else:
            raise InstructionFailure("InvalidInstructionData")


def toy_ix(op: int, amount: int, metas: Sequence[AccountMeta], extra: bytes = b"") -> Instruction:
    return Instruction(TOY_PROGRAM_ID, bytes([op]) + struct.pack("<Q", amount) + extra, list(metas))


def new_chain(*, emulate_ata: bool = True, monotonic: list[float] | None = None) -> LocalChain:
    programs: list[EmulatedProgram] = [
        ToyProgram(),
        *([AssociatedTokenAccountProgram()] if emulate_ata else []),
    ]
    if monotonic is None:
        return LocalChain(emulated_programs=programs)
    return LocalChain(emulated_programs=programs, monotonic=lambda: monotonic[0])


def funded(chain: LocalChain, lamports: int = 10 * SOL) -> Keypair:
    keypair = Keypair()
    chain.airdrop(keypair.pubkey(), lamports)
    return keypair


def signed(
    chain: LocalChain, payer: Keypair, ixs: Sequence[Instruction], *others: Keypair
) -> VersionedTransaction:
    message = MessageV0.try_compile(payer.pubkey(), list(ixs), [], chain.latest_blockhash[0])
    return VersionedTransaction(message, [payer, *others])


def landed(chain: LocalChain, tx: VersionedTransaction, *, skip_preflight: bool = False) -> ExecutionResult:
    signature = chain.send(tx, skip_preflight=skip_preflight)
    record = chain.transaction(signature)
    assert record is not None, "the transaction did not land"
    return record.result


def make_mint(chain: LocalChain, decimals: int = 6, program: Pubkey = TOKEN_PROGRAM_ID) -> Pubkey:
    mint = Pubkey.new_unique()
    chain.set_account(
        mint, Account(1_461_600, encode_mint(Mint(None, 10**15, decimals, True, None)), program)
    )
    return mint


def make_token_account(
    chain: LocalChain,
    owner: Pubkey,
    mint: Pubkey,
    amount: int,
    *,
    address: Pubkey | None = None,
    state: int = ACCOUNT_STATE_INITIALIZED,
    delegate: tuple[Pubkey, int] | None = None,
) -> Pubkey:
    address = address or Pubkey.new_unique()
    native = 2_039_280 if mint == NATIVE_MINT else None
    data = encode_token_account(
        TokenAccount(
            mint,
            owner,
            amount,
            delegate[0] if delegate else None,
            state,
            native,
            delegate[1] if delegate else 0,
            None,
        )
    )
    chain.set_account(address, Account(2_039_280 + (amount if native else 0), data, TOKEN_PROGRAM_ID))
    return address


def token_amount(chain: LocalChain, address: Pubkey) -> int:
    state = read_token_account(chain.get_account(address))
    assert state is not None
    return state.amount


def wrap_ixs(owner: Pubkey, lamports: int, *, price: int = 1_000, limit: int = 200_000) -> list[Instruction]:
    ata = get_associated_token_address(owner, NATIVE_MINT)
    return [
        set_compute_unit_limit(limit),
        set_compute_unit_price(price),
        create_idempotent_associated_token_account(owner, owner, NATIVE_MINT),
        transfer(TransferParams(from_pubkey=owner, to_pubkey=ata, lamports=lamports)),
        sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=ata)),
    ]


def unwrap_ix(owner: Pubkey) -> Instruction:
    ata = get_associated_token_address(owner, NATIVE_MINT)
    return close_account(
        CloseAccountParams(program_id=TOKEN_PROGRAM_ID, account=ata, dest=owner, owner=owner, signers=[])
    )


def expected_fee(signatures: int, limit: int, price: int) -> int:
    return 5_000 * signatures + math.ceil(limit * price / 1_000_000)


def instruction_error(result: ExecutionResult) -> tuple[int, object]:
    assert isinstance(result.err, TransactionErrorInstructionError), result.err
    return result.err.index, result.err.err


# -- wrapping SOL and fees ---------------------------------------------------------------
def test_wrap_sync_and_close_in_one_v0_transaction_costs_the_owner_only_the_fee() -> None:
    chain = new_chain()
    owner = funded(chain)
    before = chain.get_balance(owner.pubkey())
    result = landed(
        chain, signed(chain, owner, [*wrap_ixs(owner.pubkey(), SOL // 10), unwrap_ix(owner.pubkey())])
    )
    assert result.err is None
    assert f"Program {ASSOCIATED_TOKEN_PROGRAM_ID} success" in result.logs
    assert chain.get_account(get_associated_token_address(owner.pubkey(), NATIVE_MINT)) is None
    assert before - chain.get_balance(owner.pubkey()) == result.fee == expected_fee(1, 200_000, 1_000)


def test_wrap_leaves_a_native_account_whose_amount_matches_its_lamports() -> None:
    chain = new_chain()
    owner = funded(chain)
    result = landed(chain, signed(chain, owner, wrap_ixs(owner.pubkey(), 123_456_789)))
    ata = get_associated_token_address(owner.pubkey(), NATIVE_MINT)
    account = chain.get_account(ata)
    state = read_token_account(account)
    assert result.err is None and account is not None and state is not None
    assert (state.amount, state.is_native, account.lamports) == (
        123_456_789,
        2_039_280,
        123_456_789 + 2_039_280,
    )


def test_the_fee_is_charged_once_by_the_original_transaction_however_many_runs_it_splits_into() -> None:
    chain = new_chain()
    payer, cosigner = funded(chain), funded(chain)
    mint = make_mint(chain)
    vault_authority = Pubkey.find_program_address([VAULT_SEED], TOY_PROGRAM_ID)[0]
    vault = make_token_account(chain, vault_authority, mint, 1_000)
    user_token = make_token_account(chain, cosigner.pubkey(), mint, 0)
    sink = Pubkey.new_unique()
    ixs = [
        set_compute_unit_limit(300_001),
        set_compute_unit_price(3),
        transfer(TransferParams(from_pubkey=cosigner.pubkey(), to_pubkey=sink, lamports=SOL)),
        toy_ix(
            0,
            10,
            [
                AccountMeta(vault, False, True),
                AccountMeta(user_token, False, True),
                AccountMeta(vault_authority, False, False),
                AccountMeta(TOKEN_PROGRAM_ID, False, False),
            ],
        ),
        transfer(TransferParams(from_pubkey=cosigner.pubkey(), to_pubkey=sink, lamports=SOL)),
    ]
    payer_before, cosigner_before = chain.get_balance(payer.pubkey()), chain.get_balance(cosigner.pubkey())
    result = landed(chain, signed(chain, payer, ixs, cosigner))
    assert result.err is None
    assert result.fee == expected_fee(2, 300_001, 3) == 10_001
    assert payer_before - chain.get_balance(payer.pubkey()) == result.fee
    assert cosigner_before - chain.get_balance(cosigner.pubkey()) == 2 * SOL


def test_a_failing_last_instruction_leaves_every_account_as_before_except_the_fee() -> None:
    chain = new_chain()
    owner = funded(chain)
    mint = make_mint(chain)
    source = make_token_account(chain, owner.pubkey(), mint, 5)
    dest = make_token_account(chain, owner.pubkey(), mint, 0)
    too_much = Instruction(
        TOKEN_PROGRAM_ID,
        bytes([3]) + struct.pack("<Q", 6),
        [
            AccountMeta(source, False, True),
            AccountMeta(dest, False, True),
            AccountMeta(owner.pubkey(), True, False),
        ],
    )
    tx = signed(chain, owner, [*wrap_ixs(owner.pubkey(), SOL), too_much])
    keys = list(tx.message.account_keys)
    before = {key: chain.get_account(key) for key in keys}
    result = landed(chain, tx, skip_preflight=True)
    assert instruction_error(result) == (5, InstructionErrorCustom(1))
    for key in keys:
        if key == owner.pubkey():
            expected = before[key]
            assert expected is not None
            assert chain.get_balance(key) == expected.lamports - result.fee
        else:
            assert chain.get_account(key) == before[key], key
    assert result.post_balances[0] == result.pre_balances[0] - result.fee


# -- emulated programs between LiteSVM runs ----------------------------------------------
def test_an_emulated_pda_signed_transfer_runs_between_litesvm_instructions_that_see_its_effect() -> None:
    chain = new_chain()
    user = funded(chain)
    mint = make_mint(chain)
    vault_authority = Pubkey.find_program_address([VAULT_SEED], TOY_PROGRAM_ID)[0]
    vault = make_token_account(chain, vault_authority, mint, 1_000)
    user_token = make_token_account(chain, user.pubkey(), mint, 0)
    onward = make_token_account(chain, user.pubkey(), mint, 0)
    pay = toy_ix(
        0,
        400,
        [
            AccountMeta(vault, False, True),
            AccountMeta(user_token, False, True),
            AccountMeta(vault_authority, False, False),
            AccountMeta(TOKEN_PROGRAM_ID, False, False),
        ],
    )
    # The SPL Token transfer after it can only succeed if the emulated payment landed first.
    forward = Instruction(
        TOKEN_PROGRAM_ID,
        bytes([3]) + struct.pack("<Q", 400),
        [
            AccountMeta(user_token, False, True),
            AccountMeta(onward, False, True),
            AccountMeta(user.pubkey(), True, False),
        ],
    )
    result = landed(chain, signed(chain, user, [set_compute_unit_price(1), pay, forward]))
    assert result.err is None
    assert (token_amount(chain, vault), token_amount(chain, user_token), token_amount(chain, onward)) == (
        600,
        0,
        400,
    )
    assert f"Program {TOY_PROGRAM_ID} invoke [1]" in result.logs
    assert "Program log: paying 400" in result.logs
    assert f"Program {TOKEN_PROGRAM_ID} invoke [2]" in result.logs
    assert result.inner_instructions[1][0].stack_height == 2


def test_an_emulated_failure_is_reported_at_its_index_and_undoes_the_runs_before_it() -> None:
    chain = new_chain()
    user = funded(chain)
    mint = make_mint(chain)
    vault_authority = Pubkey.find_program_address([VAULT_SEED], TOY_PROGRAM_ID)[0]
    vault = make_token_account(chain, vault_authority, mint, 1_000)
    user_token = make_token_account(chain, user.pubkey(), mint, 0)
    sink = Pubkey.new_unique()
    ixs = [
        transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=sink, lamports=SOL)),
        toy_ix(
            0,
            400,
            [
                AccountMeta(vault, False, True),
                AccountMeta(user_token, False, True),
                AccountMeta(vault_authority, False, False),
                AccountMeta(TOKEN_PROGRAM_ID, False, False),
            ],
        ),
        toy_ix(2, 0, []),
        transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=sink, lamports=SOL)),
    ]
    result = landed(chain, signed(chain, user, ixs), skip_preflight=True)
    assert instruction_error(result) == (2, InstructionErrorCustom(6005))
    assert error_json(result.err) == {"InstructionError": [2, {"Custom": 6005}]}
    assert chain.get_account(sink) is None
    assert (token_amount(chain, vault), token_amount(chain, user_token)) == (1_000, 0)
    assert result.logs[-2].startswith(f"Program {TOY_PROGRAM_ID} consumed 500 of ")
    assert result.logs[-1] == f"Program {TOY_PROGRAM_ID} failed: custom program error: 0x1775"
    assert "Program log: refusing" in result.logs


def test_a_preflight_failure_is_raised_and_nothing_is_charged() -> None:
    chain = new_chain()
    user = funded(chain)
    before = chain.get_balance(user.pubkey())
    with pytest.raises(PreflightFailure) as raised:
        chain.send(signed(chain, user, [toy_ix(2, 0, [])]))
    assert instruction_error(raised.value.result) == (0, InstructionErrorCustom(6005))
    assert chain.get_balance(user.pubkey()) == before
    assert chain.landed_signatures(user.pubkey()) == []


def test_pre_and_post_token_balances_follow_the_emulated_transfer() -> None:
    chain = new_chain()
    user = funded(chain)
    mint = make_mint(chain, decimals=6)
    vault = make_token_account(chain, Pubkey.new_unique(), mint, 0)
    user_token = make_token_account(chain, user.pubkey(), mint, 2_500_000)
    deposit = toy_ix(
        1,
        1_500_000,
        [
            AccountMeta(user_token, False, True),
            AccountMeta(vault, False, True),
            AccountMeta(user.pubkey(), True, False),
            AccountMeta(TOKEN_PROGRAM_ID, False, False),
        ],
    )
    tx = signed(chain, user, [deposit])
    result = landed(chain, tx)
    keys = list(tx.message.account_keys)
    pre = {keys[b.account_index]: b.amount for b in result.pre_token_balances}
    post = {keys[b.account_index]: b.amount for b in result.post_token_balances}
    assert pre == {user_token: 2_500_000, vault: 0}
    assert post == {user_token: 1_000_000, vault: 1_500_000}
    assert {b.decimals for b in result.post_token_balances} == {6}
    assert {b.owner for b in result.post_token_balances if keys[b.account_index] == user_token} == {
        user.pubkey()
    }


def test_a_transfer_the_authority_did_not_sign_is_a_privilege_escalation() -> None:
    chain = new_chain()
    user, thief = funded(chain), funded(chain)
    mint = make_mint(chain)
    user_token = make_token_account(chain, user.pubkey(), mint, 100)
    thief_token = make_token_account(chain, thief.pubkey(), mint, 0)
    steal = toy_ix(
        1,
        100,
        [
            AccountMeta(user_token, False, True),
            AccountMeta(thief_token, False, True),
            AccountMeta(user.pubkey(), False, False),
            AccountMeta(TOKEN_PROGRAM_ID, False, False),
        ],
    )
    with pytest.raises(PreflightFailure) as raised:
        chain.send(signed(chain, thief, [steal]))
    assert instruction_error(raised.value.result) == (0, InstructionErrorFieldless.PrivilegeEscalation)


def test_an_emulation_cannot_touch_an_account_it_was_not_given() -> None:
    class Snooper:
        program_id = TOY_PROGRAM_ID

        def execute(self, ctx: InstructionContext) -> None:
            ctx.get(NATIVE_MINT)

    chain = LocalChain(emulated_programs=[Snooper()])
    user = funded(chain)
    with pytest.raises(PreflightFailure) as raised:
        chain.send(signed(chain, user, [Instruction(TOY_PROGRAM_ID, b"", [])]))
    assert instruction_error(raised.value.result) == (0, InstructionErrorFieldless.MissingAccount)


def test_an_emulation_that_creates_lamports_is_unbalanced() -> None:
    class Printer:
        program_id = TOY_PROGRAM_ID

        def execute(self, ctx: InstructionContext) -> None:
            ctx.set(ctx.account(0), Account(5 * SOL, b"", SYSTEM_PROGRAM_ID))

    chain = LocalChain(emulated_programs=[Printer()])
    user = funded(chain)
    with pytest.raises(PreflightFailure) as raised:
        chain.send(
            signed(chain, user, [Instruction(TOY_PROGRAM_ID, b"", [AccountMeta(user.pubkey(), True, True)])])
        )
    assert instruction_error(raised.value.result) == (0, InstructionErrorFieldless.UnbalancedInstruction)


def test_an_unknown_instruction_error_name_is_refused_at_the_raise() -> None:
    with pytest.raises(ValueError):
        InstructionFailure("SomethingMadeUp")


# -- compute units -----------------------------------------------------------------------
def test_an_emulation_that_exceeds_the_compute_unit_limit_fails_at_its_instruction() -> None:
    chain = new_chain()
    user = funded(chain)
    with pytest.raises(PreflightFailure) as raised:
        chain.send(signed(chain, user, [set_compute_unit_limit(10_000), toy_ix(3, 20_000, [])]))
    result = raised.value.result
    assert instruction_error(result) == (1, InstructionErrorFieldless.ComputationalBudgetExceeded)
    assert result.units_consumed == 10_000


def test_a_litesvm_instruction_after_an_emulation_gets_only_the_units_left() -> None:
    chain = new_chain()
    user = funded(chain)
    sink = Pubkey.new_unique()
    send_sol = transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=sink, lamports=SOL))
    # 150 (limit) + 500 + 19,000 leaves 350 units: the System transfer (150) fits.
    ok = landed(chain, signed(chain, user, [set_compute_unit_limit(20_000), toy_ix(3, 19_000, []), send_sol]))
    assert ok.err is None and ok.units_consumed == 150 + 19_500 + 150
    # 150 + 500 + 19,300 leaves 50 units: the transfer fails at its own index.
    with pytest.raises(PreflightFailure) as raised:
        chain.send(signed(chain, user, [set_compute_unit_limit(20_000), toy_ix(3, 19_300, []), send_sol]))
    assert instruction_error(raised.value.result) == (
        2,
        InstructionErrorFieldless.ComputationalBudgetExceeded,
    )


# -- history, blockhashes, signatures ----------------------------------------------------
def test_a_transaction_sent_twice_is_already_processed() -> None:
    chain = new_chain()
    user = funded(chain)
    tx = signed(
        chain,
        user,
        [transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL))],
    )
    chain.send(tx)
    after_first = chain.get_balance(user.pubkey())
    with pytest.raises(PreflightFailure) as raised:
        chain.send(tx)
    assert raised.value.result.err == TransactionErrorFieldless.AlreadyProcessed
    assert chain.send(tx, skip_preflight=True) == tx.signatures[0]
    assert chain.get_balance(user.pubkey()) == after_first


def test_a_blockhash_is_valid_for_150_blocks_and_not_found_after_151() -> None:
    chain = new_chain()
    user = funded(chain)
    blockhash, last_valid = chain.latest_blockhash
    assert last_valid == chain.block_height + 150
    for _ in range(150):
        chain.tick()
    assert chain.is_blockhash_valid(blockhash)
    chain.tick()
    message = MessageV0.try_compile(
        user.pubkey(),
        [transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL))],
        [],
        blockhash,
    )
    with pytest.raises(PreflightFailure) as raised:
        chain.send(VersionedTransaction(message, [user]))
    assert raised.value.result.err == TransactionErrorFieldless.BlockhashNotFound
    assert (
        chain.simulate(VersionedTransaction(message, [user])).err
        == TransactionErrorFieldless.BlockhashNotFound
    )


def test_advancing_slots_moves_the_clock_and_expires_old_blockhashes() -> None:
    chain = new_chain()
    blockhash, _ = chain.latest_blockhash
    chain.set_unix_timestamp(1_700_000_000)
    chain.advance_slots(10_000)
    assert chain.slot == chain.block_height == 10_000
    assert not chain.is_blockhash_valid(blockhash)
    assert chain.clock.unix_timestamp == 1_700_000_000


def test_a_bad_signature_is_refused_in_preflight_and_never_lands_without_it() -> None:
    chain = new_chain()
    user = funded(chain)
    good = signed(
        chain,
        user,
        [transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL))],
    )
    forged = VersionedTransaction.populate(good.message, [Signature.new_unique()])
    with pytest.raises(SignatureVerificationFailed):
        chain.send(forged)
    assert chain.send(forged, skip_preflight=True) == forged.signatures[0]
    assert chain.transaction(forged.signatures[0]) is None


def test_simulation_changes_nothing_and_reports_accounts_as_they_would_be() -> None:
    chain = new_chain()
    user = funded(chain)
    sink = Pubkey.new_unique()
    tx = signed(
        chain, user, [transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=sink, lamports=SOL))]
    )
    before = chain.get_balance(user.pubkey())
    result = chain.simulate(tx, accounts=[sink])
    sink_after = result.post_accounts[sink]
    assert result.err is None and sink_after is not None and sink_after.lamports == SOL
    assert chain.get_account(sink) is None and chain.get_balance(user.pubkey()) == before
    assert chain.transaction(tx.signatures[0]) is None


def test_a_landed_transaction_is_kept_with_its_slot_signers_and_prioritization_fee() -> None:
    chain = new_chain()
    user = funded(chain)
    sink = Pubkey.new_unique()
    chain.tick()
    tx = signed(
        chain,
        user,
        [
            set_compute_unit_price(777),
            transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=sink, lamports=SOL)),
        ],
    )
    signature = chain.send(tx)
    record = chain.transaction(signature)
    assert record is not None and record.slot == chain.slot
    assert chain.landed_signatures(user.pubkey()) == [signature]
    assert chain.recent_prioritization_fees([sink])[-1] == (chain.slot, 777)
    assert chain.recent_prioritization_fees([sink])[0][1] == 0


# -- faults ------------------------------------------------------------------------------
def test_a_dropped_transaction_is_accepted_and_never_lands() -> None:
    chain = new_chain()
    user = funded(chain)
    sink = Pubkey.new_unique()

    def pay() -> VersionedTransaction:
        ix = transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=sink, lamports=SOL))
        return signed(chain, user, [set_compute_unit_price(chain.slot), ix])

    chain.drop_next(1)
    dropped = pay()
    assert chain.send(dropped) == dropped.signatures[0]
    chain.tick()
    assert chain.transaction(dropped.signatures[0]) is None and chain.get_account(sink) is None
    kept = chain.send(pay())
    assert chain.transaction(kept) is not None and chain.get_balance(sink) == SOL


def test_a_held_transaction_lands_on_the_first_tick_after_the_hold() -> None:
    now = [100.0]
    chain = new_chain(monotonic=now)
    user = funded(chain)
    sink = Pubkey.new_unique()
    chain.hold_landing(1_000)
    tx = signed(
        chain, user, [transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=sink, lamports=SOL))]
    )
    signature = chain.send(tx)
    now[0] += 0.5
    chain.tick()
    assert chain.transaction(signature) is None
    now[0] += 0.6
    chain.tick()
    record = chain.transaction(signature)
    assert record is not None and record.slot == chain.slot and chain.get_balance(sink) == SOL


def test_resetting_faults_lands_held_transactions_on_the_next_tick_and_ends_an_outage() -> None:
    now = [0.0]
    chain = new_chain(monotonic=now)
    user = funded(chain)
    chain.hold_landing(60_000)
    chain.outage(60_000)
    assert chain.in_outage()
    tx = signed(
        chain,
        user,
        [transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL))],
    )
    signature = chain.send(tx)
    chain.reset_faults()
    assert not chain.in_outage()
    chain.tick()
    assert chain.transaction(signature) is not None


# -- the emulations against the real programs -------------------------------------------
@dataclass(frozen=True)
class AtaCase:
    name: str
    data: bytes = b"\x01"
    mint: str = "plain"  # plain | native | token2022 | uninitialized
    existing: str = "none"  # none | own | other_wallet | other_mint | prefunded
    wrong_address: bool = False
    poor_payer: bool = False


ATA_CASES = [
    AtaCase("create idempotent"),
    AtaCase("create", data=b""),
    AtaCase("create with [0]", data=b"\x00"),
    AtaCase("idempotent on an existing account", existing="own"),
    AtaCase("create on an existing account", data=b"", existing="own"),
    AtaCase("another wallet's account at the address", existing="other_wallet"),
    AtaCase("another mint's account at the address", existing="other_mint"),
    AtaCase("a wrong address", wrong_address=True),
    AtaCase("wrapped SOL", mint="native"),
    AtaCase("prefunded wrapped SOL", mint="native", existing="prefunded"),
    AtaCase("Token-2022", mint="token2022"),
    AtaCase("an uninitialized mint", mint="uninitialized"),
    AtaCase("a payer without the rent", poor_payer=True),
    AtaCase("unknown instruction", data=b"\x07"),
]


def run_ata_case(
    case: AtaCase, *, emulated: bool, wallet: Keypair, payer: Keypair
) -> tuple[object, Account | None, int]:
    chain = new_chain(emulate_ata=emulated)
    chain.set_account(
        payer.pubkey(), Account(1_000_000 if case.poor_payer else 10 * SOL, b"", SYSTEM_PROGRAM_ID)
    )
    program = TOKEN_2022_PROGRAM_ID if case.mint == "token2022" else TOKEN_PROGRAM_ID
    mint = NATIVE_MINT if case.mint == "native" else Pubkey.from_bytes(bytes(wallet.pubkey())[::-1])
    if case.mint in ("plain", "token2022", "uninitialized"):
        initialized = case.mint != "uninitialized"
        chain.set_account(mint, Account(1_461_600, encode_mint(Mint(None, 0, 6, initialized, None)), program))
    ata = associated_token_address(wallet.pubkey(), mint, program)
    if case.existing in ("own", "other_wallet", "other_mint"):
        owner = Pubkey.default() if case.existing == "other_wallet" else wallet.pubkey()
        account_mint = NATIVE_MINT if case.existing == "other_mint" else mint
        make_token_account(chain, owner, account_mint, 0, address=ata)
    elif case.existing == "prefunded":
        chain.set_account(ata, Account(5_000_000, b"", SYSTEM_PROGRAM_ID))
    address = Pubkey.from_bytes(bytes(ata)[::-1]) if case.wrong_address else ata
    ix = Instruction(
        ASSOCIATED_TOKEN_PROGRAM_ID,
        case.data,
        [
            AccountMeta(payer.pubkey(), True, True),
            AccountMeta(address, False, True),
            AccountMeta(wallet.pubkey(), False, False),
            AccountMeta(mint, False, False),
            AccountMeta(SYSTEM_PROGRAM_ID, False, False),
            AccountMeta(program, False, False),
        ],
    )
    before = chain.get_balance(payer.pubkey())
    result = chain.simulate(signed(chain, payer, [set_compute_unit_price(0), ix]), accounts=[ata])
    return error_json(result.err), result.post_accounts[ata], before - result.post_balances[0]


@pytest.mark.parametrize("case", ATA_CASES, ids=lambda case: case.name)
def test_the_emulated_ata_program_does_what_the_real_one_does(case: AtaCase) -> None:
    wallet, payer = Keypair(), Keypair()
    real = run_ata_case(case, emulated=False, wallet=wallet, payer=payer)
    emulated = run_ata_case(case, emulated=True, wallet=wallet, payer=payer)
    assert emulated == real


@dataclass(frozen=True)
class TransferCase:
    name: str
    amount: int = 10
    checked_decimals: int | None = None
    checked_mint: str = "same"  # same | other
    dest_mint: str = "same"  # same | other
    frozen: bool = False
    authority: str = "owner"  # owner | stranger | delegate
    delegated: int = 0
    native: bool = False
    self_transfer: bool = False
    dest_uninitialized: bool = False


TRANSFER_CASES = [
    TransferCase("plain"),
    TransferCase("checked", checked_decimals=6),
    TransferCase("insufficient funds", amount=10_000),
    TransferCase("another mint", dest_mint="other"),
    TransferCase("frozen", frozen=True),
    TransferCase("an authority that does not own the source", authority="stranger"),
    TransferCase("checked with wrong decimals", checked_decimals=9),
    TransferCase("checked with another mint", checked_decimals=6, checked_mint="other"),
    TransferCase("a delegate within its allowance", authority="delegate", delegated=10),
    TransferCase("a delegate beyond its allowance", authority="delegate", delegated=5),
    TransferCase("wrapped SOL", native=True),
    TransferCase("to itself", self_transfer=True),
    TransferCase("to an uninitialized account", dest_uninitialized=True),
]


def run_transfer_case(
    case: TransferCase, *, emulated: bool, owner: Keypair, stranger: Keypair
) -> tuple[object, Account | None, Account | None]:
    chain = new_chain()
    for keypair in (owner, stranger):
        chain.set_account(keypair.pubkey(), Account(10 * SOL, b"", SYSTEM_PROGRAM_ID))
    mint = NATIVE_MINT if case.native else Pubkey.from_bytes(bytes(owner.pubkey())[::-1])
    other_mint = Pubkey.from_bytes(bytes(stranger.pubkey())[::-1])
    for key in {mint, other_mint} - {NATIVE_MINT}:
        chain.set_account(
            key, Account(1_461_600, encode_mint(Mint(None, 10**12, 6, True, None)), TOKEN_PROGRAM_ID)
        )
    source_key = Pubkey.from_bytes(bytes(mint)[1:] + b"\x01")
    dest_key = source_key if case.self_transfer else Pubkey.from_bytes(bytes(mint)[1:] + b"\x02")
    delegate = (stranger.pubkey(), case.delegated) if case.authority == "delegate" else None
    state = ACCOUNT_STATE_FROZEN if case.frozen else ACCOUNT_STATE_INITIALIZED
    make_token_account(chain, owner.pubkey(), mint, 100, address=source_key, state=state, delegate=delegate)
    if not case.self_transfer:
        make_token_account(
            chain, stranger.pubkey(), other_mint if case.dest_mint == "other" else mint, 7, address=dest_key
        )
        if case.dest_uninitialized:
            dest_account = chain.get_account(dest_key)
            assert dest_account is not None
            chain.set_account(dest_key, Account(dest_account.lamports, bytes(165), TOKEN_PROGRAM_ID))
    authority = owner if case.authority == "owner" else stranger
    checked_mint = other_mint if case.checked_mint == "other" else mint
    if emulated:
        metas = [AccountMeta(source_key, False, True)]
        if case.checked_decimals is not None:
            metas.append(AccountMeta(checked_mint, False, False))
        metas += [AccountMeta(dest_key, False, True), AccountMeta(authority.pubkey(), True, False)]
        metas.append(AccountMeta(TOKEN_PROGRAM_ID, False, False))
        if case.checked_decimals is None:
            ix = toy_ix(1, case.amount, metas)
        else:
            ix = toy_ix(4, case.amount, metas, bytes([case.checked_decimals]))
    elif case.checked_decimals is None:
        ix = Instruction(
            TOKEN_PROGRAM_ID,
            bytes([3]) + struct.pack("<Q", case.amount),
            [
                AccountMeta(source_key, False, True),
                AccountMeta(dest_key, False, True),
                AccountMeta(authority.pubkey(), True, False),
            ],
        )
    else:
        ix = Instruction(
            TOKEN_PROGRAM_ID,
            bytes([12]) + struct.pack("<QB", case.amount, case.checked_decimals),
            [
                AccountMeta(source_key, False, True),
                AccountMeta(checked_mint, False, False),
                AccountMeta(dest_key, False, True),
                AccountMeta(authority.pubkey(), True, False),
            ],
        )
    result = chain.simulate(signed(chain, authority, [ix]), accounts=[source_key, dest_key])
    return error_json(result.err), result.post_accounts[source_key], result.post_accounts[dest_key]


@pytest.mark.parametrize("case", TRANSFER_CASES, ids=lambda case: case.name)
def test_token_transfer_does_what_the_spl_token_program_does(case: TransferCase) -> None:
    owner, stranger = Keypair(), Keypair()
    real = run_transfer_case(case, emulated=False, owner=owner, stranger=stranger)
    emulated = run_transfer_case(case, emulated=True, owner=owner, stranger=stranger)
    assert emulated == real


def test_token_transfer_keeps_wrapped_sol_lamports_in_step_with_the_amount() -> None:
    owner, stranger = Keypair(), Keypair()
    _, source, dest = run_transfer_case(
        replace(TRANSFER_CASES[0], native=True, amount=40), emulated=True, owner=owner, stranger=stranger
    )
    assert source is not None and dest is not None
    assert (source.lamports, dest.lamports) == (2_039_280 + 60, 2_039_280 + 47)


# -- address lookup tables and compute-budget refusals -----------------------------------
def lookup_table(chain: LocalChain, addresses: list[Pubkey]) -> Pubkey:
    """An active lookup table: the 56-byte meta (discriminator 1, never deactivated) and the addresses."""
    meta = struct.pack("<IQQB", 1, 2**64 - 1, 0, 0) + b"\x00" + bytes(32) + b"\x00\x00"
    key = Pubkey.new_unique()
    data = meta + b"".join(bytes(a) for a in addresses)
    chain.set_account(key, Account(10_000_000, data, ADDRESS_LOOKUP_TABLE_PROGRAM_ID))
    return key


def test_a_v0_transaction_pays_an_address_loaded_from_a_lookup_table() -> None:
    chain = new_chain()
    user = funded(chain)
    addresses = [Pubkey.new_unique() for _ in range(3)]
    table = lookup_table(chain, addresses)
    ix = transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=addresses[1], lamports=SOL))
    message = MessageV0.try_compile(
        user.pubkey(), [ix], [AddressLookupTableAccount(table, addresses)], chain.latest_blockhash[0]
    )
    assert message.address_table_lookups, "the recipient should come from the table"
    result = landed(chain, VersionedTransaction(message, [user]))
    assert result.err is None and chain.get_balance(addresses[1]) == SOL
    assert result.view is not None and result.view.loaded_writable == (addresses[1],)
    assert result.post_balances[-1] == SOL


def test_a_missing_lookup_table_refuses_the_transaction() -> None:
    chain = new_chain()
    user = funded(chain)
    addresses = [Pubkey.new_unique()]
    ix = transfer(TransferParams(from_pubkey=user.pubkey(), to_pubkey=addresses[0], lamports=SOL))
    absent = AddressLookupTableAccount(Pubkey.new_unique(), addresses)
    message = MessageV0.try_compile(user.pubkey(), [ix], [absent], chain.latest_blockhash[0])
    with pytest.raises(PreflightFailure) as raised:
        chain.send(VersionedTransaction(message, [user]))
    assert raised.value.result.err == TransactionErrorFieldless.AddressLookupTableNotFound


def test_a_repeated_compute_budget_instruction_is_refused_and_not_charged() -> None:
    chain = new_chain()
    user = funded(chain)
    before = chain.get_balance(user.pubkey())
    tx = signed(chain, user, [set_compute_unit_price(1), set_compute_unit_price(2)])
    assert chain.send(tx, skip_preflight=True) == tx.signatures[0]
    assert chain.transaction(tx.signatures[0]) is None
    assert chain.get_balance(user.pubkey()) == before
    assert chain.simulate(tx).err == TransactionErrorDuplicateInstruction(1)

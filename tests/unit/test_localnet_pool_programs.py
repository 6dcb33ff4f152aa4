"""The emulated Raydium CPMM and Meteora DAMM v2 swaps on a real in-process LocalChain.

Each test builds its own chain and genesis (about 15 ms), sends real signed
transactions (wrap SOL, create the output account, swap, unwrap) and checks the
result against the pools' curves computed here from the decoded accounts, by the
domain functions and, for the main paths, by the bare formulas as well. Failing
transactions are sent with the preflight skipped, so they land and pay the fee.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionErrorInstructionError,
)

from adapters.localnet.chain import LocalChain
from adapters.localnet.execution import ExecutionResult
from adapters.localnet.genesis import GenesisPool, GenesisResult, create_genesis, pool_programs, swap_as_house
from adapters.localnet.meteora_damm_v2_program import DAMM_V2_SWAP_UNITS
from adapters.localnet.raydium_cpmm_program import CPMM_SWAP_UNITS
from adapters.solana.instructions import (
    CpmmSwapAccounts,
    DammV2SwapAccounts,
    cpmm_swap_base_input,
    create_associated_token_account_idempotent,
    damm_v2_swap,
    unwrap_sol,
    wrap_sol,
)
from adapters.solana.meteora_damm_v2_layouts import (
    DammV2PoolAccount,
    apply_damm_v2_swap,
    decode_damm_v2_pool,
    encode_damm_v2_pool,
)
from adapters.solana.programs import (
    ANCHOR_EVENT_IX_TAG,
    CPMM_SWAP_BASE_OUTPUT,
    CPMM_SWAP_EVENT,
    DAMM_V2_EVT_SWAP2,
    DAMM_V2_SWAP2,
    METEORA_DAMM_V2_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    WSOL_MINT,
    associated_token_address,
    cpmm_authority,
)
from adapters.solana.raydium_cpmm_layouts import (
    CpmmObservationState,
    CpmmPoolState,
    cpmm_curve_inputs,
    decode_cpmm_amm_config,
    decode_cpmm_observation_state,
    decode_cpmm_pool_state,
    encode_cpmm_pool_state,
)
from adapters.solana.token_layouts import decode_token_account
from domain.curves import cpmm, damm_v2

SOL = 10**9
USD = 10**6
SWAP_INDEX = 4  # wrap (3 instructions), create the output account, then the swap


@dataclass
class Market:
    chain: LocalChain
    wallet: Keypair
    genesis: GenesisResult

    @property
    def usdc(self) -> Pubkey:
        return self.genesis.mints["USDC"]

    def pool(self, venue: str) -> GenesisPool:
        return self.genesis.pool("raydium" if venue == "raydium" else "meteora", "SOL/USDC")


@pytest.fixture
def market(tmp_path: Path) -> Market:
    chain = LocalChain(emulated_programs=pool_programs())
    wallet = Keypair()
    genesis = create_genesis(chain, wallet.pubkey(), pools_file=tmp_path / "pools.json")
    chain.set_unix_timestamp(chain.clock.unix_timestamp)  # pin the clock: no second ticks mid-test
    return Market(chain, wallet, genesis)


# -- reading the chain -------------------------------------------------------------------
def token_amount(chain: LocalChain, address: Pubkey) -> int:
    account = chain.get_account(address)
    assert account is not None, f"no token account at {address}"
    return decode_token_account(account.data).amount


def raydium_state(chain: LocalChain, pool: GenesisPool) -> CpmmPoolState:
    account = chain.get_account(pool.address)
    assert account is not None
    return decode_cpmm_pool_state(account.data)


def meteora_state(chain: LocalChain, pool: GenesisPool) -> DammV2PoolAccount:
    account = chain.get_account(pool.address)
    assert account is not None
    return decode_damm_v2_pool(account.data)


def rewrite_raydium(chain: LocalChain, pool: GenesisPool, **changes: object) -> None:
    account = chain.get_account(pool.address)
    assert account is not None
    state = msgspec.structs.replace(decode_cpmm_pool_state(account.data), **changes)
    chain.set_account(pool.address, Account(account.lamports, encode_cpmm_pool_state(state), account.owner))


def rewrite_meteora(chain: LocalChain, pool: GenesisPool, **changes: object) -> None:
    account = chain.get_account(pool.address)
    assert account is not None
    state = msgspec.structs.replace(decode_damm_v2_pool(account.data), **changes)
    chain.set_account(pool.address, Account(account.lamports, encode_damm_v2_pool(state), account.owner))


def snapshot(chain: LocalChain, keys: Sequence[Pubkey]) -> dict[Pubkey, Account | None]:
    return {key: chain.get_account(key) for key in keys}


# -- what the curves say -----------------------------------------------------------------
def raydium_quote(chain: LocalChain, pool: GenesisPool, mint_in: Pubkey, amount: int) -> cpmm.CpmmSwapResult:
    state = raydium_state(chain, pool)
    config_account = chain.get_account(state.amm_config)
    assert config_account is not None
    config = decode_cpmm_amm_config(config_account.data)
    curve_pool, fees = cpmm_curve_inputs(
        state, config, token_amount(chain, state.token_0_vault), token_amount(chain, state.token_1_vault)
    )
    return cpmm.swap_base_input(
        curve_pool,
        fees,
        amount,
        zero_for_one=mint_in == state.token_0_mint,
        unix_timestamp=chain.clock.unix_timestamp,
    )


def meteora_quote(
    chain: LocalChain, pool: GenesisPool, mint_in: Pubkey, amount: int, *, referral: bool = False
) -> damm_v2.DammV2SwapResult:
    state = meteora_state(chain, pool)
    clock = chain.clock
    return damm_v2.swap_exact_in(
        state.curve_pool(),
        state.pool_fees,
        amount,
        mint_in == state.token_a_mint,
        slot=clock.slot,
        unix_timestamp=clock.unix_timestamp,
        has_referral=referral,
    )


def quote_out(m: Market, venue: str, mint_in: Pubkey, amount: int) -> int:
    if venue == "raydium":
        return raydium_quote(m.chain, m.pool(venue), mint_in, amount).amount_out
    return meteora_quote(m.chain, m.pool(venue), mint_in, amount).amount_out


# -- building and sending swaps ----------------------------------------------------------
def raydium_accounts(
    m: Market, owner: Pubkey, mint_in: Pubkey, pool: GenesisPool | None = None
) -> CpmmSwapAccounts:
    pool = pool or m.pool("raydium")
    state = raydium_state(m.chain, pool)
    zero_for_one = mint_in == state.token_0_mint
    mint_out = state.token_1_mint if zero_for_one else state.token_0_mint
    vault_in, vault_out = (
        (state.token_0_vault, state.token_1_vault)
        if zero_for_one
        else (state.token_1_vault, state.token_0_vault)
    )
    return CpmmSwapAccounts(
        payer=owner,
        authority=cpmm_authority(pool.program_id),
        amm_config=state.amm_config,
        pool_state=pool.address,
        input_token_account=associated_token_address(owner, mint_in),
        output_token_account=associated_token_address(owner, mint_out),
        input_vault=vault_in,
        output_vault=vault_out,
        input_token_program=TOKEN_PROGRAM_ID,
        output_token_program=TOKEN_PROGRAM_ID,
        input_token_mint=mint_in,
        output_token_mint=mint_out,
        observation_state=state.observation_key,
    )


def meteora_accounts(m: Market, owner: Pubkey, mint_in: Pubkey) -> DammV2SwapAccounts:
    pool = m.pool("meteora")
    state = meteora_state(m.chain, pool)
    mint_out = state.token_b_mint if mint_in == state.token_a_mint else state.token_a_mint
    return DammV2SwapAccounts(
        pool=pool.address,
        input_token_account=associated_token_address(owner, mint_in),
        output_token_account=associated_token_address(owner, mint_out),
        token_a_vault=state.token_a_vault,
        token_b_vault=state.token_b_vault,
        token_a_mint=state.token_a_mint,
        token_b_mint=state.token_b_mint,
        payer=owner,
        token_a_program=TOKEN_PROGRAM_ID,
        token_b_program=TOKEN_PROGRAM_ID,
    )


def swap_ix(
    m: Market, venue: str, mint_in: Pubkey, amount: int, min_out: int = 0, **overrides: Pubkey
) -> Instruction:
    owner = m.wallet.pubkey()
    if venue == "raydium":
        accounts = msgspec.structs.replace(raydium_accounts(m, owner, mint_in), **overrides)
        return cpmm_swap_base_input(m.pool(venue).program_id, accounts, amount, min_out)
    damm_accounts = msgspec.structs.replace(meteora_accounts(m, owner, mint_in), **overrides)
    return damm_v2_swap(damm_accounts, amount, min_out)


def sol_to_usdc(m: Market, swap: Instruction, lamports: int) -> list[Instruction]:
    """Wrap, create the USDC account, swap, close the wSOL account: the swap is at SWAP_INDEX."""
    owner = m.wallet.pubkey()
    return [
        *wrap_sol(owner, lamports),
        create_associated_token_account_idempotent(owner, owner, m.usdc),
        swap,
        *unwrap_sol(owner),
    ]


def usdc_to_sol(m: Market, swap: Instruction) -> list[Instruction]:
    owner = m.wallet.pubkey()
    return [create_associated_token_account_idempotent(owner, owner, WSOL_MINT), swap, *unwrap_sol(owner)]


def land(m: Market, ixs: Sequence[Instruction], *, payer: Keypair | None = None) -> ExecutionResult:
    """Send with the preflight skipped (so a failure lands) in a new slot (so no two are equal)."""
    m.chain.tick()
    payer = payer or m.wallet
    message = MessageV0.try_compile(payer.pubkey(), list(ixs), [], m.chain.latest_blockhash[0])
    signature = m.chain.send(VersionedTransaction(message, [payer]), skip_preflight=True)
    record = m.chain.transaction(signature)
    assert record is not None, "the transaction did not land"
    return record.result


def custom_error(result: ExecutionResult) -> tuple[int, int]:
    assert isinstance(result.err, TransactionErrorInstructionError), result.err
    assert isinstance(result.err.err, InstructionErrorCustom), result.err.err
    return result.err.index, result.err.err.code


def expected_error(venue: str, *, raydium: int, meteora: int) -> int:
    return raydium if venue == "raydium" else meteora


# -- successful swaps ----------------------------------------------------------------------
def test_a_raydium_sol_to_usdc_swap_pays_the_curve_output_and_writes_the_fee_counters(market: Market) -> None:
    m, pool = market, market.pool("raydium")
    state = raydium_state(m.chain, pool)
    sol_is_0 = state.token_0_mint == WSOL_MINT
    vault_sol, vault_usdc = (
        (state.token_0_vault, state.token_1_vault) if sol_is_0 else (state.token_1_vault, state.token_0_vault)
    )
    sol_before, usdc_before = token_amount(m.chain, vault_sol), token_amount(m.chain, vault_usdc)
    amount = 3 * SOL
    expected = raydium_quote(m.chain, pool, WSOL_MINT, amount)
    fee = -(-amount * 2_500 // 1_000_000)  # the bare formula: fee rounded up, the curve rounded down
    assert expected.amount_out == (amount - fee) * usdc_before // (sol_before + amount - fee)

    result = land(m, sol_to_usdc(m, swap_ix(m, "raydium", WSOL_MINT, amount), amount))

    assert result.err is None, result.logs
    wallet_usdc = associated_token_address(m.wallet.pubkey(), m.usdc)
    assert token_amount(m.chain, wallet_usdc) == 100_000 * USD + expected.amount_out
    assert token_amount(m.chain, vault_sol) == sol_before + amount
    assert token_amount(m.chain, vault_usdc) == usdc_before - expected.amount_out
    after = raydium_state(m.chain, pool)
    assert after.fees_owed == expected.fees_owed
    side = "0" if sol_is_0 else "1"
    assert getattr(after.fees_owed, f"protocol_fees_token_{side}") == fee * 120_000 // 1_000_000
    assert getattr(after.fees_owed, f"fund_fees_token_{side}") == fee * 40_000 // 1_000_000
    assert after.recent_epoch == m.chain.clock.epoch
    assert m.chain.get_account(associated_token_address(m.wallet.pubkey(), WSOL_MINT)) is None


def test_a_raydium_usdc_to_sol_swap_pays_the_curve_output_in_sol(market: Market) -> None:
    m = market
    amount = 1_500 * USD
    expected = raydium_quote(m.chain, m.pool("raydium"), m.usdc, amount)
    lamports_before = m.chain.get_balance(m.wallet.pubkey())

    result = land(m, usdc_to_sol(m, swap_ix(m, "raydium", m.usdc, amount)))

    assert result.err is None, result.logs
    assert m.chain.get_balance(m.wallet.pubkey()) == lamports_before - result.fee + expected.amount_out
    assert (
        token_amount(m.chain, associated_token_address(m.wallet.pubkey(), m.usdc)) == 100_000 * USD - amount
    )
    assert expected.amount_out > 9 * SOL  # about 10 SOL at 150 USDC


def test_a_meteora_sol_to_usdc_swap_pays_the_concentrated_curve_output(market: Market) -> None:
    m, pool = market, market.pool("meteora")
    state = meteora_state(m.chain, pool)
    assert state.token_a_mint == WSOL_MINT
    vault_a_before, vault_b_before = (
        token_amount(m.chain, state.token_a_vault),
        token_amount(m.chain, state.token_b_vault),
    )
    amount = 2 * SOL
    expected = meteora_quote(m.chain, pool, WSOL_MINT, amount)
    liquidity, price = state.liquidity, state.sqrt_price  # the bare formulas, A to B, fee on the output
    next_price = -(-liquidity * price // (liquidity + amount * price))
    gross = liquidity * (price - next_price) >> 128
    assert expected.amount_out == gross - -(-gross * 3_000_000 // 10**9)

    result = land(m, sol_to_usdc(m, swap_ix(m, "meteora", WSOL_MINT, amount), amount))

    assert result.err is None, result.logs
    assert token_amount(m.chain, associated_token_address(m.wallet.pubkey(), m.usdc)) == (
        100_000 * USD + expected.amount_out
    )
    assert token_amount(m.chain, state.token_a_vault) == vault_a_before + amount
    assert token_amount(m.chain, state.token_b_vault) == vault_b_before - expected.amount_out
    after = meteora_state(m.chain, pool)
    assert after == apply_damm_v2_swap(state, expected)
    assert after.sqrt_price == next_price and after.protocol_b_fee == expected.protocol_fee > 0


def test_a_meteora_usdc_to_sol_swap_pays_the_curve_output_in_sol(market: Market) -> None:
    m, pool = market, market.pool("meteora")
    state = meteora_state(m.chain, pool)
    amount = 300 * USD
    expected = meteora_quote(m.chain, pool, m.usdc, amount)
    liquidity, price = state.liquidity, state.sqrt_price  # B to A: the fee is taken in A, from the output
    next_price = price + (amount << 128) // liquidity
    gross = liquidity * (next_price - price) // (price * next_price)
    assert expected.amount_out == gross - -(-gross * 3_000_000 // 10**9)
    lamports_before = m.chain.get_balance(m.wallet.pubkey())

    result = land(m, usdc_to_sol(m, swap_ix(m, "meteora", m.usdc, amount)))

    assert result.err is None, result.logs
    assert m.chain.get_balance(m.wallet.pubkey()) == lamports_before - result.fee + expected.amount_out
    after = meteora_state(m.chain, pool)
    assert (
        after.protocol_a_fee == expected.protocol_fee > 0
        and after.token_b_amount == state.token_b_amount + amount
    )


def test_meteora_swap2_in_exact_in_mode_pays_what_swap_pays(market: Market) -> None:
    m = market
    amount = 50 * USD
    expected = quote_out(m, "meteora", m.usdc, amount)
    ix = swap_ix(m, "meteora", m.usdc, amount)
    swap2 = Instruction(ix.program_id, DAMM_V2_SWAP2 + struct.pack("<QQB", amount, expected, 0), ix.accounts)

    result = land(
        m,
        [create_associated_token_account_idempotent(m.wallet.pubkey(), m.wallet.pubkey(), WSOL_MINT), swap2],
    )

    assert result.err is None, result.logs
    assert "Program log: Instruction: Swap2" in result.logs
    assert token_amount(m.chain, associated_token_address(m.wallet.pubkey(), WSOL_MINT)) == expected


def test_a_meteora_pool_of_layout_0_gets_its_reserves_from_the_curve_on_its_first_swap(
    market: Market,
) -> None:
    m, pool = market, market.pool("meteora")
    rewrite_meteora(m.chain, pool, layout_version=0, token_a_amount=0, token_b_amount=0)
    old = meteora_state(m.chain, pool)
    reserve_a, reserve_b = damm_v2.reserves_from_curve(old.curve_pool())
    expected = meteora_quote(m.chain, pool, m.usdc, 100 * USD)

    result = land(m, usdc_to_sol(m, swap_ix(m, "meteora", m.usdc, 100 * USD)))

    assert result.err is None, result.logs
    after = meteora_state(m.chain, pool)
    assert after.layout_version == 1
    assert (after.token_a_amount, after.token_b_amount) == (
        reserve_a - expected.gross_amount_out,
        reserve_b + 100 * USD,
    )


@pytest.mark.parametrize("mode", [1, 2, 3])
def test_meteora_swap2_modes_other_than_exact_in_are_refused_with_invalid_input(
    market: Market, mode: int
) -> None:
    m = market
    ix = swap_ix(m, "meteora", m.usdc, 50 * USD)
    swap2 = Instruction(ix.program_id, DAMM_V2_SWAP2 + struct.pack("<QQB", 50 * USD, 0, mode), ix.accounts)

    result = land(m, usdc_to_sol(m, swap2))

    assert custom_error(result) == (1, 6018)


def test_a_meteora_referral_account_receives_its_share_of_the_protocol_fee(market: Market) -> None:
    m = market
    referrer = Keypair().pubkey()
    referral_account = associated_token_address(referrer, m.usdc)
    amount = 5 * SOL
    expected = meteora_quote(m.chain, m.pool("meteora"), WSOL_MINT, amount, referral=True)
    ixs = sol_to_usdc(
        m, swap_ix(m, "meteora", WSOL_MINT, amount, referral_token_account=referral_account), amount
    )
    ixs.insert(SWAP_INDEX, create_associated_token_account_idempotent(m.wallet.pubkey(), referrer, m.usdc))

    result = land(m, ixs)

    assert result.err is None, result.logs
    # 20% of the fee is protocol, 20% of that goes to the referrer (fee in B, the output).
    assert token_amount(m.chain, referral_account) == expected.referral_fee > 0
    assert expected.referral_fee == expected.fee * 20 // 100 * 20 // 100


# -- failures ------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_minimum_above_the_output_fails_with_slippage_and_changes_nothing_but_the_fee(
    market: Market, venue: str
) -> None:
    m = market
    amount = SOL
    expected = quote_out(m, venue, WSOL_MINT, amount)
    ixs = sol_to_usdc(m, swap_ix(m, venue, WSOL_MINT, amount, expected + 1), amount)
    keys = sorted({meta.pubkey for ix in ixs for meta in ix.accounts}, key=bytes)
    before = snapshot(m.chain, keys)

    result = land(m, ixs)

    assert custom_error(result) == (SWAP_INDEX, expected_error(venue, raydium=6005, meteora=6002))
    after = snapshot(m.chain, keys)
    payer = m.wallet.pubkey()
    assert {k: v for k, v in after.items() if k != payer} == {k: v for k, v in before.items() if k != payer}
    payer_before, payer_after = before[payer], after[payer]
    assert payer_before is not None and payer_after is not None
    assert payer_before.lamports - payer_after.lamports == result.fee


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_disabled_pool_refuses_the_swap(market: Market, venue: str) -> None:
    m = market
    if venue == "raydium":
        rewrite_raydium(m.chain, m.pool(venue), status=cpmm.STATUS_SWAP_DISABLED)
    else:
        rewrite_meteora(m.chain, m.pool(venue), pool_status=1)

    result = land(m, usdc_to_sol(m, swap_ix(m, venue, m.usdc, 10 * USD)))

    assert custom_error(result) == (1, expected_error(venue, raydium=6000, meteora=6003))


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_pool_not_yet_open_refuses_the_swap(market: Market, venue: str) -> None:
    m = market
    later = m.chain.clock.unix_timestamp + 60
    if venue == "raydium":
        rewrite_raydium(m.chain, m.pool(venue), open_time=later)
    else:
        rewrite_meteora(m.chain, m.pool(venue), activation_point=later)

    result = land(m, usdc_to_sol(m, swap_ix(m, venue, m.usdc, 10 * USD)))

    assert custom_error(result) == (1, expected_error(venue, raydium=6000, meteora=6003))


def test_a_raydium_pool_opens_at_its_open_time_itself(market: Market) -> None:
    m = market
    rewrite_raydium(m.chain, m.pool("raydium"), open_time=m.chain.clock.unix_timestamp)

    result = land(m, usdc_to_sol(m, swap_ix(m, "raydium", m.usdc, 10 * USD)))

    assert result.err is None, result.logs


def test_a_meteora_pool_activated_by_slot_opens_at_its_slot(market: Market) -> None:
    m, pool = market, market.pool("meteora")
    opening = m.chain.slot + 2  # `land` sends each transaction in a new slot
    rewrite_meteora(m.chain, pool, activation_type=damm_v2.ACTIVATION_BY_SLOT, activation_point=opening)

    early = land(m, usdc_to_sol(m, swap_ix(m, "meteora", m.usdc, 10 * USD)))
    on_time = land(m, usdc_to_sol(m, swap_ix(m, "meteora", m.usdc, 10 * USD)))

    assert custom_error(early) == (1, 6003)
    assert on_time.err is None and m.chain.slot == opening


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_vault_of_another_pool_is_refused_by_the_account_checks(market: Market, venue: str) -> None:
    m = market
    stable = raydium_state(m.chain, m.genesis.pool("raydium", "USDC/USDT"))
    foreign_usdc_vault = stable.token_0_vault if stable.token_0_mint == m.usdc else stable.token_1_vault
    if venue == "raydium":
        ix = swap_ix(m, venue, m.usdc, 10 * USD, input_vault=foreign_usdc_vault)
    else:
        ix = swap_ix(m, venue, m.usdc, 10 * USD, token_b_vault=foreign_usdc_vault)

    result = land(m, usdc_to_sol(m, ix))

    # Raydium: the vault constraint (ConstraintRaw); Meteora: has_one on the pool (ConstraintHasOne).
    assert custom_error(result) == (1, expected_error(venue, raydium=2003, meteora=2001))


def test_raydium_refuses_the_input_vault_passed_as_both_vaults(market: Market) -> None:
    m = market
    accounts = raydium_accounts(m, m.wallet.pubkey(), m.usdc)
    # The vault constraint admits either pool vault and the mint must be the vault's: only the
    # handler's vault pair test catches this.
    ix = swap_ix(m, "raydium", m.usdc, 10 * USD, output_vault=accounts.input_vault, output_token_mint=m.usdc)

    assert custom_error(land(m, usdc_to_sol(m, ix))) == (1, 6008)  # InvalidVault


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_wrong_pool_authority_is_refused(market: Market, venue: str) -> None:
    m = market
    impostor = Keypair().pubkey()
    if venue == "raydium":
        ix = swap_ix(m, venue, m.usdc, 10 * USD, authority=impostor)
    else:
        ix = swap_ix(m, venue, m.usdc, 10 * USD, pool_authority=impostor)

    result = land(m, usdc_to_sol(m, ix))

    # Raydium checks the authority's seeds (ConstraintSeeds); Meteora its address (ConstraintAddress).
    assert custom_error(result) == (1, expected_error(venue, raydium=2006, meteora=2012))
    assert any(str(impostor) in line for line in result.logs) == (venue == "raydium")


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_payer_that_did_not_sign_is_refused(market: Market, venue: str) -> None:
    m = market
    sponsor = Keypair()
    m.chain.airdrop(sponsor.pubkey(), SOL)
    ix = swap_ix(m, venue, m.usdc, 10 * USD)
    wallet = m.wallet.pubkey()
    unsigned = Instruction(
        ix.program_id,
        ix.data,
        [
            AccountMeta(meta.pubkey, False, meta.is_writable) if meta.pubkey == wallet else meta
            for meta in ix.accounts
        ],
    )

    create_output = create_associated_token_account_idempotent(sponsor.pubkey(), wallet, WSOL_MINT)

    result = land(m, [create_output, unsigned], payer=sponsor)

    assert custom_error(result) == (1, 3010)  # AccountNotSigner


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_read_only_pool_account_is_refused(market: Market, venue: str) -> None:
    m = market
    ix = swap_ix(m, venue, m.usdc, 10 * USD)
    pool = m.pool(venue).address
    read_only = Instruction(
        ix.program_id,
        ix.data,
        [
            AccountMeta(meta.pubkey, meta.is_signer, False) if meta.pubkey == pool else meta
            for meta in ix.accounts
        ],
    )

    result = land(m, usdc_to_sol(m, read_only))

    # Anchor's `mut` constraint (ConstraintMut) / the fast path's AccountNotMutable.
    assert custom_error(result) == (1, expected_error(venue, raydium=2000, meteora=3006))


def test_a_swap_for_more_than_the_wallet_holds_fails_in_the_token_program(market: Market) -> None:
    m = market

    result = land(m, usdc_to_sol(m, swap_ix(m, "raydium", m.usdc, 100_001 * USD)))

    assert custom_error(result) == (1, 1)  # SPL Token InsufficientFunds, from the CPI
    assert f"Program {TOKEN_PROGRAM_ID} failed: custom program error: 0x1" in result.logs


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_an_instruction_other_than_the_swap_is_instruction_fallback_not_found(
    market: Market, venue: str
) -> None:
    m = market
    ix = swap_ix(m, venue, m.usdc, 10 * USD)
    other = Instruction(ix.program_id, CPMM_SWAP_BASE_OUTPUT + bytes(24), ix.accounts)

    assert custom_error(land(m, [other])) == (0, 101)


def test_meteora_refuses_too_few_accounts_with_the_bare_code(market: Market) -> None:
    m = market
    ix = swap_ix(m, "meteora", m.usdc, 10 * USD)

    result = land(m, [Instruction(ix.program_id, ix.data, ix.accounts[:13])])

    assert custom_error(result) == (0, 3005)
    assert not any(line.startswith("Program log:") for line in result.logs)


# -- logs, events, units, the oracle ---------------------------------------------------------
def test_raydium_logs_the_instruction_and_its_swap_event(market: Market) -> None:
    m = market
    amount = 20 * USD
    expected = raydium_quote(m.chain, m.pool("raydium"), m.usdc, amount)

    result = land(m, usdc_to_sol(m, swap_ix(m, "raydium", m.usdc, amount)))

    assert result.err is None
    assert "Program log: Instruction: SwapBaseInput" in result.logs
    (data_line,) = [line for line in result.logs if line.startswith("Program data: ")]
    event = base64.b64decode(data_line.removeprefix("Program data: "))
    assert event[:8] == CPMM_SWAP_EVENT and len(event) == 170
    assert Pubkey.from_bytes(event[8:40]) == m.pool("raydium").address
    assert struct.unpack_from("<QQQQ", event, 40) == (
        expected.reserve_in,
        expected.reserve_out,
        amount,
        expected.amount_out,
    )


def test_meteora_emits_its_swap_event_through_a_self_cpi(market: Market) -> None:
    m = market

    result = land(m, usdc_to_sol(m, swap_ix(m, "meteora", m.usdc, 20 * USD)))

    assert result.err is None
    program = str(METEORA_DAMM_V2_PROGRAM_ID)
    assert f"Program {program} invoke [2]" in result.logs
    (event,) = [inner for inner in result.inner_instructions[1] if inner.data.startswith(ANCHOR_EVENT_IX_TAG)]
    assert event.data[8:16] == DAMM_V2_EVT_SWAP2
    assert Pubkey.from_bytes(event.data[16:48]) == m.pool("meteora").address


@pytest.mark.parametrize(("venue", "units"), [("raydium", CPMM_SWAP_UNITS), ("meteora", DAMM_V2_SWAP_UNITS)])
def test_a_swap_consumes_the_programs_declared_compute_units(market: Market, venue: str, units: int) -> None:
    m = market

    result = land(m, usdc_to_sol(m, swap_ix(m, venue, m.usdc, 10 * USD)))

    program = m.pool(venue).program_id
    assert result.err is None
    assert any(line.startswith(f"Program {program} consumed {units} of ") for line in result.logs)


def test_raydium_swaps_stamp_then_accumulate_the_observation(market: Market) -> None:
    m, pool = market, market.pool("raydium")
    observation_key = raydium_state(m.chain, pool).observation_key
    start = m.chain.clock.unix_timestamp

    def observation() -> CpmmObservationState:
        account = m.chain.get_account(observation_key)
        assert account is not None
        return decode_cpmm_observation_state(account.data)

    def swap() -> None:
        assert land(m, usdc_to_sol(m, swap_ix(m, "raydium", m.usdc, 10 * USD))).err is None

    swap()
    first = observation()
    assert first.initialized and first.observation_index == 0
    assert first.observations[0].block_timestamp == start

    state = raydium_state(m.chain, pool)
    reserve_0 = (
        token_amount(m.chain, state.token_0_vault)
        - state.fees_owed.protocol_fees_token_0
        - state.fees_owed.fund_fees_token_0
    )
    reserve_1 = (
        token_amount(m.chain, state.token_1_vault)
        - state.fees_owed.protocol_fees_token_1
        - state.fees_owed.fund_fees_token_1
    )
    m.chain.set_unix_timestamp(start + 5)
    swap()
    second = observation()
    # Under 15 s: the same slot accumulates the pre-swap price over the 5 s since the last update.
    assert second.observation_index == 0
    assert second.observations[0].cumulative_token_0_price_x32 == (reserve_1 * 2**32 // reserve_0 * 5)
    m.chain.set_unix_timestamp(start + 20)
    swap()
    third = observation()
    assert third.observation_index == 1
    assert third.observations[1].block_timestamp == start + 20
    assert third.last_update_timestamp == start + 20


# -- the house trader --------------------------------------------------------------------------
@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_house_swap_between_quote_and_swap_moves_the_price_into_slippage(
    market: Market, venue: str
) -> None:
    m = market
    amount = SOL
    quoted = quote_out(m, venue, WSOL_MINT, amount)

    swap_as_house(m.chain, m.pool(venue), WSOL_MINT, 500 * SOL)

    assert quote_out(m, venue, WSOL_MINT, amount) < quoted
    result = land(m, sol_to_usdc(m, swap_ix(m, venue, WSOL_MINT, amount, quoted), amount))
    assert custom_error(result) == (SWAP_INDEX, expected_error(venue, raydium=6005, meteora=6002))


def test_repeated_equal_house_swaps_all_land(market: Market) -> None:
    m = market
    pool = m.genesis.pool("raydium", "USDC/USDT")

    signatures = {swap_as_house(m.chain, pool, m.usdc, 1_000 * USD) for _ in range(3)}

    assert len(signatures) == 3

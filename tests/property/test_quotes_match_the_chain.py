"""The venues' pool models against the chain: what a model prices is what the program pays.

One in-process `LocalChain` with the genesis pools serves the module (no HTTP). For
random amounts, from one raw unit to about 5% of the pool's input reserve, in both
directions on both SOL/USDC pools, the model prices the swap from the accounts it
says a quote reads (`model.accounts(layout)`, read with `chain.get_account`), and
the genesis house trader then sends `model.swap_instruction` with that price as its
minimum output: the program refuses a single unit more (ExceededSlippage) and pays
exactly the price, as the trader's token balances show. Every swap moves the pool, so
each example meets a new state; the properties are about whatever the state is now.
The last test checks that a pool program reads the time of its slot, as a quote does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace
from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError

from adapters.localnet.chain import LocalChain, PreflightFailure
from adapters.localnet.execution import ExecutionResult
from adapters.localnet.genesis import GenesisPool, GenesisResult, create_genesis, pool_programs
from adapters.solana.meteora_damm_v2_layouts import decode_damm_v2_pool
from adapters.solana.pool_models import MODELS, PoolLayout, PoolModel, PoolUnavailable, PricedSwap
from adapters.solana.programs import WSOL_MINT, associated_token_address, decode_program_error
from adapters.solana.raydium_cpmm_layouts import (
    decode_cpmm_amm_config,
    decode_cpmm_pool_state,
    encode_cpmm_pool_state,
)
from adapters.solana.token_layouts import decode_token_account
from domain.curves import damm_v2
from domain.curves.cpmm import reserves_without_fees
from domain.curves.damm_v2_fees import TimeSchedulerFee
from domain.curves.errors import ProgramError

EXAMPLES = settings(max_examples=40, deadline=None)
VENUES = ("raydium", "meteora")
DIRECTIONS = ("SOL->USDC", "USDC->SOL")
# What genesis configures (adapters/localnet/genesis.py): AmmConfig 0's trade fee, and
# the DAMM v2 pool's constant cliff fee.
GENESIS_FEE = {"raydium": Fraction(2_500, 1_000_000), "meteora": Fraction(3_000_000, 1_000_000_000)}


@dataclass
class Market:
    chain: LocalChain
    genesis: GenesisResult

    def pool(self, venue: str) -> GenesisPool:
        return self.genesis.pool("raydium" if venue == "raydium" else "meteora", "SOL/USDC")

    def mints(self, direction: str) -> tuple[Pubkey, Pubkey]:
        usdc = self.genesis.mints["USDC"]
        return (WSOL_MINT, usdc) if direction == "SOL->USDC" else (usdc, WSOL_MINT)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Market:
    chain = LocalChain(emulated_programs=pool_programs())
    genesis = create_genesis(
        chain, Keypair().pubkey(), pools_file=tmp_path_factory.mktemp("quotes") / "pools.json"
    )
    chain.set_unix_timestamp(chain.clock.unix_timestamp)
    return Market(chain, genesis)


# -- reading the chain as a quote does -------------------------------------------------------
def account(chain: LocalChain, address: Pubkey) -> Account:
    found = chain.get_account(address)
    assert found is not None, f"no account at {address}"
    return found


def pool_layout(m: Market, venue: str) -> tuple[PoolModel, PoolLayout]:
    model, pool = MODELS[venue], m.pool(venue)
    return model, model.layout(pool.address, account(m.chain, pool.address))


def quote_accounts(m: Market, model: PoolModel, layout: PoolLayout) -> list[Account | None]:
    return [m.chain.get_account(key) for key in model.accounts(layout)]


def token_amount(chain: LocalChain, address: Pubkey) -> int:
    return decode_token_account(account(chain, address).data).amount


def curve_reserves(m: Market, venue: str, layout: PoolLayout) -> tuple[int, int]:
    """The pool's pricing reserves of token 0 / token A and token 1 / token B."""
    if venue == "raydium":
        state = decode_cpmm_pool_state(account(m.chain, layout.pool).data)
        return reserves_without_fees(
            token_amount(m.chain, layout.vault_0), token_amount(m.chain, layout.vault_1), state.fees_owed
        )
    pool = decode_damm_v2_pool(account(m.chain, layout.pool).data)
    if pool.layout_version == 0:
        return damm_v2.reserves_from_curve(pool.curve_pool())
    return pool.token_a_amount, pool.token_b_amount


def reserves_in_out(m: Market, venue: str, layout: PoolLayout, mint_in: Pubkey) -> tuple[int, int]:
    reserve_0, reserve_1 = curve_reserves(m, venue, layout)
    return (reserve_0, reserve_1) if mint_in == layout.mint_0 else (reserve_1, reserve_0)


# An amount is drawn without looking at the chain (so Hypothesis can replay the draw) and
# sized against the reserve the example meets: raw units, or parts per million of it.
Size = tuple[str, int]
up_to_5_percent: st.SearchStrategy[Size] = st.one_of(
    st.tuples(st.just("raw"), st.integers(1, 10_000)),
    st.tuples(st.just("ppm"), st.integers(1, 50_000)),
)
far_past_any_quote: st.SearchStrategy[Size] = st.tuples(st.just("ppm"), st.integers(1, 100_000_000))


def amount_of(size: Size, reserve_in: int) -> int:
    unit, value = size
    return value if unit == "raw" else max(1, reserve_in * value // 1_000_000)


# -- the house trader's swap -------------------------------------------------------------------
def house_swap(
    m: Market,
    venue: str,
    layout: PoolLayout,
    mint_in: Pubkey,
    mint_out: Pubkey,
    amount: int,
    minimum_out: int,
) -> VersionedTransaction:
    """A signed swap of the house trader's associated accounts, on a fresh blockhash."""
    trader = m.pool(venue).house_trader
    owner = trader.pubkey()
    ix: Instruction = MODELS[venue].swap_instruction(
        layout,
        wallet=owner,
        input_account=associated_token_address(owner, mint_in),
        output_account=associated_token_address(owner, mint_out),
        mint_in=mint_in,
        amount_in=amount,
        minimum_out=minimum_out,
    )
    message = MessageV0.try_compile(owner, [ix], [], m.chain.latest_blockhash[0])
    return VersionedTransaction(message, [trader])


def custom_error(result: ExecutionResult) -> int:
    assert isinstance(result.err, TransactionErrorInstructionError), result.err
    assert isinstance(result.err.err, InstructionErrorCustom), result.err.err
    return result.err.err.code


def price_or_error(
    model: PoolModel, layout: PoolLayout, accounts: Sequence[Account | None], mint_in: Pubkey, amount: int
) -> PricedSwap | ProgramError:
    try:
        return model.price(layout, accounts, mint_in, amount)
    except ProgramError as refusal:
        return refusal


# -- properties ----------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("venue", VENUES)
@EXAMPLES
@given(size=up_to_5_percent)
def test_the_chain_pays_exactly_what_the_model_prices_from_its_accounts(
    market: Market, venue: str, direction: str, size: Size
) -> None:
    m = market
    m.chain.tick()  # a new blockhash: no two examples' transactions share a signature
    model, layout = pool_layout(m, venue)
    mint_in, mint_out = m.mints(direction)
    reserve_in, _ = reserves_in_out(m, venue, layout, mint_in)
    amount = amount_of(size, reserve_in)
    priced = price_or_error(model, layout, quote_accounts(m, model, layout), mint_in, amount)

    if isinstance(priced, ProgramError):
        # The model refuses (a dust amount Raydium cannot trade): so does the program, with its code.
        refused = m.chain.simulate(house_swap(m, venue, layout, mint_in, mint_out, amount, 0))
        assert custom_error(refused) == priced.code, refused.logs
        return

    owner = m.pool(venue).house_trader.pubkey()
    held_in, held_out = associated_token_address(owner, mint_in), associated_token_address(owner, mint_out)
    before_in, before_out = token_amount(m.chain, held_in), token_amount(m.chain, held_out)
    one_more = m.chain.simulate(
        house_swap(m, venue, layout, mint_in, mint_out, amount, priced.amount_out + 1)
    )
    assert "ExceededSlippage" in decode_program_error(layout.program_id, custom_error(one_more))

    try:
        m.chain.send(house_swap(m, venue, layout, mint_in, mint_out, amount, priced.amount_out))
    except PreflightFailure as failure:
        pytest.fail(f"the chain refused the priced output {priced.amount_out}: {failure.result.err}")

    assert token_amount(m.chain, held_in) == before_in - amount
    assert token_amount(m.chain, held_out) == before_out + priced.amount_out


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("venue", VENUES)
@EXAMPLES
@given(size=st.one_of(up_to_5_percent, far_past_any_quote))
def test_the_priced_output_is_strictly_below_the_output_reserve(
    market: Market, venue: str, direction: str, size: Size
) -> None:
    model, layout = pool_layout(market, venue)
    mint_in, _ = market.mints(direction)
    reserve_in, reserve_out = reserves_in_out(market, venue, layout, mint_in)
    # Up to a hundred times the input reserve: far past any quote, the pool still keeps some.
    amount = amount_of(size, reserve_in)

    priced = price_or_error(model, layout, quote_accounts(market, model, layout), mint_in, amount)

    if isinstance(priced, PricedSwap):
        assert 0 <= priced.amount_out < reserve_out
        assert priced.reserve_in == reserve_in


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("venue", VENUES)
@EXAMPLES
@given(sizes=st.tuples(up_to_5_percent, up_to_5_percent))
def test_the_priced_output_does_not_decrease_as_the_amount_grows(
    market: Market, venue: str, direction: str, sizes: tuple[Size, Size]
) -> None:
    model, layout = pool_layout(market, venue)
    mint_in, _ = market.mints(direction)
    reserve_in, _ = reserves_in_out(market, venue, layout, mint_in)
    smaller, larger = sorted(amount_of(size, reserve_in) for size in sizes)
    accounts = quote_accounts(market, model, layout)  # one state for both prices

    low = price_or_error(model, layout, accounts, mint_in, smaller)
    high = price_or_error(model, layout, accounts, mint_in, larger)

    if isinstance(low, PricedSwap):
        assert isinstance(high, PricedSwap), f"{smaller} is priced but {larger} is refused: {high}"
        assert low.amount_out <= high.amount_out


def configured_fee(market: Market, venue: str, layout: PoolLayout) -> Fraction:
    """The pool's fee rate as its accounts configure it."""
    if venue == "raydium":
        assert layout.config is not None
        state = decode_cpmm_pool_state(account(market.chain, layout.pool).data)
        config = decode_cpmm_amm_config(account(market.chain, layout.config).data)
        creator = config.creator_fee_rate if state.enable_creator_fee else 0
        return Fraction(config.trade_fee_rate + creator, 1_000_000)
    pool = decode_damm_v2_pool(account(market.chain, layout.pool).data)
    base_fee = pool.pool_fees.base_fee
    assert isinstance(base_fee, TimeSchedulerFee) and base_fee.period_frequency == 0  # a constant fee
    assert not pool.pool_fees.dynamic_fee.initialized
    return Fraction(base_fee.cliff_fee_numerator, 1_000_000_000)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("venue", VENUES)
@EXAMPLES
@given(size=st.tuples(st.just("ppm"), st.integers(10, 50_000)))
def test_the_fee_rate_priced_is_the_pools_configured_fee(
    market: Market, venue: str, direction: str, size: Size
) -> None:
    model, layout = pool_layout(market, venue)
    mint_in, _ = market.mints(direction)
    reserve_in, _ = reserves_in_out(market, venue, layout, mint_in)
    amount = amount_of(size, reserve_in)

    priced = model.price(layout, quote_accounts(market, model, layout), mint_in, amount)

    assert priced.fee_rate == configured_fee(market, venue, layout) == GENESIS_FEE[venue]


def test_a_pool_program_reads_the_clock_of_its_slot_as_the_quote_does(tmp_path: Path) -> None:
    wall = [1_800_000_000.0]
    chain = LocalChain(emulated_programs=pool_programs(), wall_clock=lambda: wall[0])
    m = Market(chain, create_genesis(chain, Keypair().pubkey(), pools_file=tmp_path / "pools.json"))
    chain.tick()
    wall[0] += 1  # a second passes on the wall clock before the next slot
    address = m.pool("raydium").address
    original = account(chain, address)
    opening = replace(decode_cpmm_pool_state(original.data), open_time=1_800_000_001)
    chain.set_account(address, Account(original.lamports, encode_cpmm_pool_state(opening), original.owner))
    model, layout = pool_layout(m, "raydium")
    with pytest.raises(PoolUnavailable, match="not yet"):  # the slot's Clock says 1_800_000_000
        model.price(layout, quote_accounts(m, model, layout), WSOL_MINT, 10**9)

    swap = chain.simulate(house_swap(m, "raydium", layout, WSOL_MINT, m.genesis.mints["USDC"], 10**9, 0))

    assert "NotApproved" in decode_program_error(layout.program_id, custom_error(swap))

"""The on-chain venue's quotes over a local chain in this process (no HTTP): what a quote
reads and says, and which pools it leaves out and why."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_status import TransactionConfirmationStatus

from adapters.localnet.chain import LocalChain
from adapters.localnet.genesis import GenesisResult, create_genesis, pool_programs
from adapters.solana.onchain_dex import OnChainDex, OnChainPolicy, _reached
from adapters.solana.pool_config import load_pool_book
from adapters.solana.pool_models import MODELS
from adapters.solana.raydium_cpmm_layouts import decode_cpmm_pool_state, encode_cpmm_pool_state
from adapters.solana.rpc import ChainRpc
from domain.errors import NoPool, TransientError


class InProcessRpc(ChainRpc):
    """The reads a quote makes, answered from a LocalChain; `lag` makes the node look behind."""

    def __init__(self, chain: LocalChain) -> None:
        self.chain = chain
        self.lag = 0
        self.reads = 0

    async def accounts(self, keys: Sequence[Pubkey]) -> tuple[int, list[Account | None]]:
        self.reads += 1
        return self.chain.slot - self.lag, [self.chain.get_account(k) for k in keys]


World = tuple[LocalChain, GenesisResult, InProcessRpc, dict[str, OnChainDex]]


@pytest.fixture
def world(tmp_path: Path) -> World:
    chain = LocalChain(emulated_programs=pool_programs())
    genesis = create_genesis(chain, Keypair().pubkey(), pools_file=tmp_path / "pools.json")
    rpc = InProcessRpc(chain)
    book = load_pool_book(tmp_path / "pools.json")
    policy = OnChainPolicy(priority_fee_cap=1000, max_slot_lag=10)
    dexes = {name: OnChainDex(model, rpc, Keypair(), book, policy) for name, model in MODELS.items()}
    return chain, genesis, rpc, dexes


@pytest.mark.anyio
async def test_a_quote_prices_the_exact_amount_and_names_its_pool_and_slot(world: World) -> None:
    chain, genesis, rpc, dexes = world
    for _ in range(5):
        chain.tick()
    quote = await dexes["raydium"].quote("SOL", "USDC", Decimal("2"))
    assert quote.quoted_amount == Decimal("2") and quote.slot == chain.slot
    assert quote.pool == str(genesis.pool("raydium", "SOL/USDC").address)
    assert quote.fee == Decimal("0.0025")
    assert Decimal(149) < quote.price < Decimal(151) and quote.price_impact is not None
    assert 0 < quote.expected_out < quote.price * 2  # fee and impact taken
    reads = rpc.reads
    await dexes["raydium"].quote("SOL", "USDC", Decimal("3"))
    assert rpc.reads == reads + 1  # after the first quote, one getMultipleAccounts per quote


@pytest.mark.anyio
async def test_a_state_read_far_behind_the_newest_slot_seen_is_left_out_as_stale(world: World) -> None:
    chain, _, rpc, dexes = world
    for _ in range(30):
        chain.tick()
    await dexes["meteora"].quote("SOL", "USDC", Decimal("1"))
    rpc.lag = 11  # a lagging node, one slot past the allowed lag

    with pytest.raises(TransientError, match=r"state is stale: read at slot 19, 11 slots behind"):
        await dexes["meteora"].quote("SOL", "USDC", Decimal("1"))


@pytest.mark.anyio
async def test_a_disabled_pool_is_left_out_with_its_reason(world: World) -> None:
    chain, genesis, _, dexes = world
    address = genesis.pool("raydium", "SOL/USDC").address
    account = chain.get_account(address)
    assert account is not None
    state = decode_cpmm_pool_state(bytes(account.data))
    disabled = encode_cpmm_pool_state(msgspec.structs.replace(state, status=state.status | 0b100))
    chain.set_account(address, Account(account.lamports, disabled, account.owner, False, 0))

    with pytest.raises(TransientError, match=rf"Raydium pool {address} has swaps disabled"):
        await dexes["raydium"].quote("SOL", "USDC", Decimal("1"))


@pytest.mark.anyio
async def test_a_pair_with_no_pool_on_the_venue_is_no_pool(world: World) -> None:
    _, _, _, dexes = world
    with pytest.raises(NoPool):
        await dexes["meteora"].quote("USDC", "USDT", Decimal("1"))


@pytest.mark.anyio
async def test_a_pools_file_without_the_tokens_mint_learns_it_from_the_pool(
    world: World, tmp_path: Path
) -> None:
    _, genesis, rpc, _ = world
    pool = genesis.pool("meteora", "SOL/USDC")
    bare = tmp_path / "bare.json"
    entry = {"pair": "SOL/USDC", "venue": "meteora", "address": str(pool.address)}
    bare.write_text(json.dumps({"cluster": "localnet", "pools": [entry]}))  # no `tokens`
    dex = OnChainDex(
        MODELS["meteora"], rpc, Keypair(), load_pool_book(bare), OnChainPolicy(priority_fee_cap=0)
    )

    quote = await dex.quote("USDC", "SOL", Decimal("150"))

    assert quote.pool == str(pool.address) and Decimal("0.9") < quote.expected_out < Decimal(1)


@pytest.mark.parametrize(
    ("status", "commitment", "counts"),
    [
        (TransactionConfirmationStatus.Processed, "processed", True),
        (TransactionConfirmationStatus.Processed, "confirmed", False),
        (TransactionConfirmationStatus.Confirmed, "confirmed", True),
        (TransactionConfirmationStatus.Finalized, "confirmed", True),
        (TransactionConfirmationStatus.Confirmed, "finalized", False),
        (None, "processed", False),
    ],
)
def test_a_landing_counts_once_it_reaches_the_configured_commitment(
    status: TransactionConfirmationStatus | None, commitment: str, counts: bool
) -> None:
    assert _reached(status, commitment) is counts

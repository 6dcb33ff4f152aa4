"""The on-chain venue (`OnChainDex` over `ChainRpc`, solana-py's AsyncClient) against the
local chain's JSON-RPC server on 127.0.0.1, with the genesis pools and a funded wallet.

Marked `integration` because it starts a real HTTP server (a thread with uvicorn); it
needs no Postgres or Redis. One server serves the module and the tests run in order,
so nobody trades on a pool between a test's quote and its swap. A pool made unavailable
is a copy of a genesis pool at an address of the test's own, named in a pools file of
its own, so the genesis pools are never disabled; faults are reset after each test.
The last two tests pin a receipt that once counted the rent of accounts the swap opened.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from adapters.localnet.chain import LocalChain
from adapters.localnet.genesis import GenesisResult, create_genesis, pool_programs
from adapters.localnet.rpc_server import LocalnetServer
from adapters.solana.instructions import create_associated_token_account_idempotent, wrap_sol
from adapters.solana.meteora_damm_v2_layouts import (
    DammV2PoolAccount,
    decode_damm_v2_pool,
    encode_damm_v2_pool,
)
from adapters.solana.onchain_dex import MAX_COMPUTE_UNITS, OnChainDex, OnChainPolicy
from adapters.solana.pool_config import (
    PoolBook,
    PoolEntry,
    PoolsFile,
    load_pool_book,
    write_pools_file,
)
from adapters.solana.pool_models import MODELS, PoolLayout, PricedSwap
from adapters.solana.programs import associated_token_address
from adapters.solana.raydium_cpmm_layouts import (
    CpmmPoolState,
    decode_cpmm_amm_config,
    decode_cpmm_pool_state,
    encode_cpmm_pool_state,
)
from adapters.solana.rpc import ChainRpc
from adapters.solana.token_layouts import decode_token_account
from domain.curves.damm_v2_fees import TimeSchedulerFee
from domain.errors import NoPool, SwapExpired, SwapRejected, TransientError
from domain.events import Quote
from domain.ports import SignedSwap, SwapTerms

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

T = TypeVar("T")
VENUES = ("raydium", "meteora")
LAMPORTS = 10**9
USDC_UNITS = 10**6
FLOOR, CAP = 1_000, 50_000  # micro-lamports per compute unit
POLICY = OnChainPolicy(
    priority_fee_cap=CAP,
    priority_fee_floor=FLOOR,
    confirm_timeout_s=3,
    poll_interval_s=0.05,
    rebroadcast_interval_s=0.3,
)


@dataclass
class Localnet:
    server: LocalnetServer
    wallet: Keypair
    genesis: GenesisResult
    book: PoolBook
    tmp: Path

    def call(self, fn: Callable[[LocalChain], T]) -> T:
        return self.server.call(fn)

    def pool_address(self, venue: str) -> Pubkey:
        return self.genesis.pool("raydium" if venue == "raydium" else "meteora", "SOL/USDC").address

    def account(self, address: Pubkey) -> Account:
        found = self.call(lambda chain: chain.get_account(address))
        assert found is not None, f"no account at {address}"
        return found

    def token(self, owner: Pubkey, symbol: str) -> int:
        address = associated_token_address(owner, self.genesis.mints[symbol])
        found = self.call(lambda chain: chain.get_account(address))
        return decode_token_account(found.data).amount if found is not None else 0

    def landed(self, signer: Pubkey) -> list[Signature]:
        return self.call(lambda chain: chain.landed_signatures(signer))

    def layout(self, venue: str) -> PoolLayout:
        address = self.pool_address(venue)
        return MODELS[venue].layout(address, self.account(address))

    def priced(self, venue: str, token_in: str, raw_in: int) -> PricedSwap:
        """What the venue's model pays for `raw_in` on the chain's accounts as they are now."""
        model, layout = MODELS[venue], self.layout(venue)
        keys = model.accounts(layout)
        accounts = self.call(lambda chain: [chain.get_account(k) for k in keys])
        return model.price(layout, accounts, self.genesis.mints[token_in], raw_in)

    def book_naming(self, venue: str, address: Pubkey) -> PoolBook:
        """A pools file of the test's own whose SOL/USDC pool on `venue` is at `address`."""
        path = self.tmp / f"pools-{uuid.uuid4().hex}.json"
        genesis_file = self.genesis.pools_file
        write_pools_file(
            path,
            PoolsFile(
                cluster=genesis_file.cluster,
                tokens=genesis_file.tokens,
                pools=[PoolEntry(pair="SOL/USDC", venue=venue, address=str(address))],  # type: ignore[arg-type]
            ),
        )
        return load_pool_book(path)


@pytest.fixture(scope="module")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    tmp = tmp_path_factory.mktemp("onchain-dex")
    wallet = Keypair()
    with LocalnetServer(LocalChain(emulated_programs=pool_programs()), slot_ms=100) as server:
        genesis = server.call(
            lambda chain: create_genesis(chain, wallet.pubkey(), pools_file=tmp / "pools.json")
        )
        yield Localnet(server, wallet, genesis, load_pool_book(tmp / "pools.json"), tmp)


@pytest.fixture(autouse=True)
def no_faults(localnet: Localnet) -> Iterator[None]:
    yield
    localnet.call(lambda chain: chain.reset_faults())


class CountingRpc(ChainRpc):
    """A ChainRpc that records the JSON-RPC method of every request it makes."""

    def __init__(self, url: str) -> None:
        super().__init__(url, timeout_s=5)
        self.methods: list[str] = []

    async def _call(self, method: str, request: Awaitable[T]) -> T:
        self.methods.append(method)
        return await super()._call(method, request)


@pytest.fixture
async def rpc(localnet: Localnet) -> AsyncIterator[CountingRpc]:
    client = CountingRpc(localnet.server.url)
    yield client
    await client.close()


@pytest.fixture
def venue(localnet: Localnet, rpc: CountingRpc) -> Callable[..., OnChainDex]:
    def make(name: str, *, wallet: Keypair | None = None, book: PoolBook | None = None) -> OnChainDex:
        return OnChainDex(MODELS[name], rpc, wallet or localnet.wallet, book or localnet.book, POLICY)

    return make


def terms_for(quote: Quote, token_in: str, token_out: str, **changes: Any) -> SwapTerms:
    terms = SwapTerms(
        order_id=f"order-{uuid.uuid4().hex}",
        token_in=token_in,
        token_out=token_out,
        amount=quote.quoted_amount or Decimal(0),
        min_out=quote.expected_out * Decimal("0.99"),
        quote=quote,
    )
    return msgspec.structs.replace(terms, **changes)


async def signed_swap(dex: OnChainDex, amount: str, **changes: Any) -> tuple[Quote, SwapTerms, SignedSwap]:
    """A SOL→USDC swap quoted, planned and signed, not sent."""
    quote = await dex.quote("SOL", "USDC", Decimal(amount))
    terms = terms_for(quote, "SOL", "USDC", **changes)
    plan = await dex.plan(terms)
    terms = msgspec.structs.replace(terms, compute_units=plan.compute_units, priority_fee=plan.priority_fee)
    return quote, terms, await dex.sign(terms, terms.order_id)


def configured_fee(localnet: Localnet, venue: str) -> Decimal:
    layout = localnet.layout(venue)
    if venue == "raydium":
        assert layout.config is not None
        config = decode_cpmm_amm_config(localnet.account(layout.config).data)
        return Decimal(config.trade_fee_rate) / 1_000_000
    base_fee = decode_damm_v2_pool(localnet.account(layout.pool).data).pool_fees.base_fee
    assert isinstance(base_fee, TimeSchedulerFee) and base_fee.period_frequency == 0  # a constant fee
    return Decimal(base_fee.cliff_fee_numerator) / 1_000_000_000


def usdc_per_sol(localnet: Localnet, venue: str) -> Fraction:
    """The pool's reserve ratio, USDC per SOL, from its vault balances."""
    layout = localnet.layout(venue)
    amounts = {
        mint: decode_token_account(localnet.account(vault).data).amount
        for mint, vault in ((layout.mint_0, layout.vault_0), (layout.mint_1, layout.vault_1))
    }
    sol, usdc = amounts[localnet.genesis.mints["SOL"]], amounts[localnet.genesis.mints["USDC"]]
    return Fraction(usdc, USDC_UNITS) / Fraction(sol, LAMPORTS)


# -- quote -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", VENUES)
async def test_a_quote_is_the_models_price_of_the_amount_on_the_chains_accounts(
    localnet: Localnet, venue: Callable[..., OnChainDex], name: str
) -> None:
    dex = venue(name)

    quote = await dex.quote("SOL", "USDC", Decimal("1.5"))

    priced = localnet.priced(name, "SOL", 3 * LAMPORTS // 2)
    assert quote.dex == name
    assert quote.pool == str(localnet.pool_address(name))
    assert quote.slot is not None and 0 <= quote.slot <= localnet.call(lambda chain: chain.slot)
    assert quote.quoted_amount == Decimal("1.5")
    assert quote.expected_out == Decimal(priced.amount_out) / USDC_UNITS > 0
    assert quote.price_impact is not None and 0 <= quote.price_impact < 1
    assert (
        quote.fee
        == configured_fee(localnet, name)
        == {"raydium": Decimal("0.0025"), "meteora": Decimal("0.003")}[name]
    )
    ratio = usdc_per_sol(localnet, name)
    assert abs(Fraction(quote.price) / ratio - 1) < Fraction(1, 1000), (quote.price, float(ratio))


@pytest.mark.parametrize("name", VENUES)
async def test_after_the_first_quote_each_quote_is_one_get_multiple_accounts(
    venue: Callable[..., OnChainDex], rpc: CountingRpc, name: str
) -> None:
    dex = venue(name)
    await dex.quote("SOL", "USDC", Decimal("1"))

    for token_in, token_out, amount in (("SOL", "USDC", "2"), ("USDC", "SOL", "150")):
        rpc.methods.clear()
        await dex.quote(token_in, token_out, Decimal(amount))
        assert rpc.methods == ["getMultipleAccounts"]


@dataclass(frozen=True)
class Unavailability:
    venue: str
    change: Callable[[bytes, int, int], bytes]  # (pool data, unix time, slot) -> pool data
    reason: str


def raydium_change(
    **fields: Callable[[CpmmPoolState, int], int],
) -> Callable[[bytes, int, int], bytes]:
    def change(data: bytes, unix: int, _: int) -> bytes:
        state = decode_cpmm_pool_state(data)
        values = {name: value(state, unix) for name, value in fields.items()}
        return encode_cpmm_pool_state(msgspec.structs.replace(state, **values))

    return change


def meteora_change(
    **fields: Callable[[DammV2PoolAccount, int, int], int],
) -> Callable[[bytes, int, int], bytes]:
    def change(data: bytes, unix: int, slot: int) -> bytes:
        pool = decode_damm_v2_pool(data)
        values = {name: value(pool, unix, slot) for name, value in fields.items()}
        return encode_damm_v2_pool(msgspec.structs.replace(pool, **values))

    return change


def activation_in_an_hour(pool: DammV2PoolAccount, unix: int, _: int) -> int:
    assert pool.activation_type == 1  # the genesis pool activates by unix time
    return unix + 3_600


UNAVAILABLE = [
    Unavailability(
        "raydium", raydium_change(status=lambda s, _: s.status | 0b100), r"has swaps disabled \(status \d+\)"
    ),
    Unavailability(
        "raydium", raydium_change(open_time=lambda _, unix: unix + 3_600), r"opens at unix time \d+, not yet"
    ),
    Unavailability("meteora", meteora_change(pool_status=lambda *_: 1), r"is disabled \(pool_status 1\)"),
    Unavailability(
        "meteora",
        meteora_change(activation_point=activation_in_an_hour),
        r"activates at unix time \d+, not yet",
    ),
]


@pytest.mark.parametrize(
    "case",
    UNAVAILABLE,
    ids=["raydium-disabled", "raydium-not-open", "meteora-disabled", "meteora-not-active"],
)
async def test_a_pool_that_becomes_unavailable_is_left_out_of_the_next_quote_with_its_reason(
    localnet: Localnet, venue: Callable[..., OnChainDex], case: Unavailability
) -> None:
    # A copy of the genesis pool at an address of this test's own (it prices on the same vaults).
    original = localnet.account(localnet.pool_address(case.venue))
    address = Keypair().pubkey()
    localnet.call(lambda chain: chain.set_account(address, original))
    dex = venue(case.venue, book=localnet.book_naming(case.venue, address))
    await dex.quote("SOL", "USDC", Decimal("1"))  # quoted while open

    def make_unavailable(chain: LocalChain) -> None:
        clock = chain.clock
        data = case.change(bytes(original.data), clock.unix_timestamp, clock.slot)
        chain.set_account(address, Account(original.lamports, data, original.owner, False, 0))

    localnet.call(make_unavailable)

    with pytest.raises(TransientError, match=case.reason) as refused:
        await dex.quote("SOL", "USDC", Decimal("1"))
    assert str(address) in str(refused.value) and str(refused.value).startswith(f"{case.venue}: ")


@pytest.mark.parametrize("name", VENUES)
async def test_a_pool_the_pools_file_names_but_the_chain_lacks_is_left_out_as_missing(
    localnet: Localnet, venue: Callable[..., OnChainDex], name: str
) -> None:
    address = Keypair().pubkey()
    dex = venue(name, book=localnet.book_naming(name, address))

    with pytest.raises(TransientError, match=f"pool {address} does not exist"):
        await dex.quote("SOL", "USDC", Decimal("1"))


async def test_a_pair_without_a_configured_pool_is_no_pool(venue: Callable[..., OnChainDex]) -> None:
    with pytest.raises(NoPool):
        await venue("meteora").quote("USDC", "USDT", Decimal("10"))  # only Raydium has USDC/USDT
    with pytest.raises(NoPool):
        await venue("raydium").quote("SOL", "USDT", Decimal("1"))


# -- plan --------------------------------------------------------------------------------------
async def test_planning_a_swap_of_more_sol_than_the_wallet_holds_is_refused_and_nothing_is_sent(
    localnet: Localnet, venue: Callable[..., OnChainDex]
) -> None:
    dex = venue("raydium")
    landed_before = localnet.landed(localnet.wallet.pubkey())
    quote = await dex.quote("SOL", "USDC", Decimal("500"))  # the wallet holds about 100 SOL

    with pytest.raises(SwapRejected, match="insufficient funds") as refused:
        await dex.plan(terms_for(quote, "SOL", "USDC"))

    assert "SOL" in str(refused.value)
    assert localnet.landed(localnet.wallet.pubkey()) == landed_before


async def test_planning_a_swap_of_a_token_the_wallet_lacks_is_refused_and_nothing_is_sent(
    localnet: Localnet, venue: Callable[..., OnChainDex]
) -> None:
    wallet = Keypair()  # SOL for fees, and no USDC account at all
    localnet.call(lambda chain: chain.airdrop(wallet.pubkey(), LAMPORTS))
    dex = venue("meteora", wallet=wallet)
    quote = await dex.quote("USDC", "SOL", Decimal("25"))

    with pytest.raises(SwapRejected, match="insufficient funds") as refused:
        await dex.plan(terms_for(quote, "USDC", "SOL"))

    assert f"holds 0 USDC; the swap needs {Decimal('25')}" in str(refused.value)
    assert localnet.landed(wallet.pubkey()) == []


@pytest.mark.parametrize("name", VENUES)
async def test_a_plan_budgets_the_simulated_units_and_applies_the_priority_fee_floor(
    localnet: Localnet, venue: Callable[..., OnChainDex], name: str
) -> None:
    dex = venue(name)
    landed_before = localnet.landed(localnet.wallet.pubkey())
    quote = await dex.quote("SOL", "USDC", Decimal("0.5"))

    plan = await dex.plan(terms_for(quote, "SOL", "USDC"))

    assert plan.compute_units is not None and 0 < plan.compute_units <= MAX_COMPUTE_UNITS
    # Nobody bids for these pools' accounts on this chain: the recent fees are below the floor.
    assert plan.priority_fee == FLOOR <= CAP
    assert localnet.landed(localnet.wallet.pubkey()) == landed_before  # a plan only simulates


# -- sign, send, confirm -----------------------------------------------------------------------
@pytest.mark.parametrize("name", VENUES)
async def test_a_confirmed_swap_pays_exactly_the_quote_and_its_receipt_says_what_moved(
    localnet: Localnet, venue: Callable[..., OnChainDex], name: str
) -> None:
    dex, owner = venue(name), localnet.wallet.pubkey()
    usdc_before = localnet.token(owner, "USDC")
    quote, terms, signed = await signed_swap(dex, "0.8")

    await dex.send(signed, terms)
    receipt = await dex.confirm(signed, terms)

    assert receipt.tx_hash == signed.signature
    assert receipt.amount_out == quote.expected_out  # nobody traded in between
    assert receipt.amount_in == Decimal("0.8")
    assert receipt.fee_paid is not None and receipt.fee_paid > 0
    assert receipt.slot is not None and quote.slot is not None and receipt.slot >= quote.slot
    assert localnet.token(owner, "USDC") == usdc_before + int(receipt.amount_out * USDC_UNITS)
    assert localnet.landed(owner).count(Signature.from_string(signed.signature)) == 1


async def test_sending_a_swap_that_landed_again_sends_nothing(
    localnet: Localnet, venue: Callable[..., OnChainDex], rpc: CountingRpc
) -> None:
    dex, owner = venue("raydium"), localnet.wallet.pubkey()
    _, terms, signed = await signed_swap(dex, "0.3")
    await dex.send(signed, terms)
    await dex.confirm(signed, terms)
    landed = localnet.landed(owner)

    rpc.methods.clear()
    await dex.send(signed, terms)

    assert rpc.methods == ["getSignatureStatuses"]
    assert localnet.landed(owner) == landed
    assert landed.count(Signature.from_string(signed.signature)) == 1


async def test_a_swap_lost_until_its_blockhash_expires_is_swap_expired_at_confirm(
    localnet: Localnet, venue: Callable[..., OnChainDex]
) -> None:
    dex, owner = venue("meteora"), localnet.wallet.pubkey()
    _, terms, signed = await signed_swap(dex, "0.4")
    localnet.call(lambda chain: chain.faults.lose_next(1))
    await dex.send(signed, terms)
    localnet.call(lambda chain: chain.advance_slots(200))

    with pytest.raises(SwapExpired):
        await dex.confirm(signed, terms)

    assert Signature.from_string(signed.signature) not in localnet.landed(owner)


@pytest.mark.parametrize("name", VENUES)
async def test_a_swap_asking_one_unit_more_than_the_pool_pays_is_refused_at_send_and_nothing_lands(
    localnet: Localnet, venue: Callable[..., OnChainDex], name: str
) -> None:
    dex, owner = venue(name), localnet.wallet.pubkey()
    quote = await dex.quote("SOL", "USDC", Decimal("0.6"))
    terms = terms_for(quote, "SOL", "USDC", min_out=quote.expected_out + Decimal(1) / USDC_UNITS)
    signed = await dex.sign(terms, terms.order_id)
    landed_before = localnet.landed(owner)

    with pytest.raises(SwapRejected, match="ExceededSlippage"):
        await dex.send(signed, terms)

    assert localnet.landed(owner) == landed_before


# -- receipts of wallets that do not hold exactly the genesis accounts --------------------------


def funded_wallet(localnet: Localnet, instructions: Callable[[Pubkey], list[Instruction]]) -> Keypair:
    """A new wallet with 5 SOL, that has run `instructions(wallet)` in one transaction."""
    wallet = Keypair()

    def fund(chain: LocalChain) -> None:
        chain.airdrop(wallet.pubkey(), 5 * LAMPORTS)
        ixs = instructions(wallet.pubkey())
        if ixs:
            message = MessageV0.try_compile(wallet.pubkey(), ixs, [], chain.latest_blockhash[0])
            chain.send(VersionedTransaction(message, [wallet]))

    localnet.call(fund)
    return wallet


async def test_a_first_swap_into_usdc_reports_the_sol_swapped_without_the_new_accounts_rent(
    venue: Callable[..., OnChainDex], localnet: Localnet
) -> None:
    wallet = funded_wallet(localnet, lambda _: [])  # SOL only: the swap opens its USDC account
    dex = venue("raydium", wallet=wallet)
    _, terms, signed = await signed_swap(dex, "0.5")
    await dex.send(signed, terms)

    receipt = await dex.confirm(signed, terms)

    assert receipt.amount_in == Decimal("0.5")  # today 0.50203928: the USDC account's rent


async def test_a_swap_from_a_wallet_holding_wrapped_sol_reports_the_sol_swapped(
    venue: Callable[..., OnChainDex], localnet: Localnet
) -> None:
    usdc = localnet.genesis.mints["USDC"]
    wallet = funded_wallet(
        localnet,
        lambda owner: [
            *wrap_sol(owner, LAMPORTS),
            create_associated_token_account_idempotent(owner, owner, usdc),
        ],
    )
    dex = venue("raydium", wallet=wallet)
    _, terms, signed = await signed_swap(dex, "0.5")
    await dex.send(signed, terms)

    receipt = await dex.confirm(signed, terms)

    assert receipt.amount_in == Decimal("0.5")  # today -0.50203928, and executed_price 0

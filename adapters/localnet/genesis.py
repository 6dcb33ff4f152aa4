"""A local chain's genesis: test tokens, a funded wallet, and Raydium and Meteora pools.

`create_genesis(chain, wallet, pools_file=...)` turns a fresh `LocalChain` built with
`pool_programs()` into a small market the engine can trade on, and writes the pools
file (`adapters.solana.pool_config`) that points the engine at it:

- mints USDC and USDT (6 decimals; their mint authority is `GenesisResult.mint_authority`,
  which the chain keeps), and the wrapped-SOL mint if it is missing;
- `wallet` gets 100 SOL (an airdrop) and 100,000 USDC and USDT in its associated accounts;
- a Raydium CPMM SOL/USDC pool (about 10,000 SOL / 1,500,000 USDC; AmmConfig 0: trade fee
  0.25%, protocol 12%, fund 4% of it, no creator fee), a Meteora DAMM v2 SOL/USDC pool
  (about 6,000 SOL / 903,000 USDC, constant 0.30% fee, full range) and a Raydium CPMM
  USDC/USDT pool (1,000,000 each; AmmConfig 1: trade fee 0.01%), all opened an hour
  before the chain's clock at genesis;
- a house trader holding plenty of every token (including wrapped SOL), whose
  `swap_as_house` moves a pool's price with a real signed transaction, e.g. between a
  quote and a swap to force a slippage failure.

Addresses depend only on `seed` (the mints', the house trader's, every pool account's,
which are PDAs of those), so a localnet restarted with the same seed writes the same
pools file.

Why `pool_programs()` and not registration here: a `LocalChain` fixes its emulated
programs when it is built, so genesis checks that both pool programs run and says so
if they do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from solders.account import Account
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorFieldless

from adapters.localnet.chain import LocalChain, PreflightFailure
from adapters.localnet.emulation import EmulatedProgram
from adapters.localnet.genesis_accounts import (
    CpmmConfig,
    Ledger,
    Side,
    create_cpmm_config,
    create_cpmm_pool,
    create_damm_v2_pool,
)
from adapters.localnet.meteora_damm_v2_program import MeteoraDammV2Program
from adapters.localnet.raydium_cpmm_program import RaydiumCpmmProgram
from adapters.localnet.token_accounts import NATIVE_MINT, TOKEN_PROGRAM_ID
from adapters.solana.instructions import (
    CpmmSwapAccounts,
    DammV2SwapAccounts,
    cpmm_swap_base_input,
    damm_v2_swap,
)
from adapters.solana.meteora_damm_v2_layouts import decode_damm_v2_pool
from adapters.solana.pool_config import DEFAULT_PROGRAMS, PoolEntry, PoolsFile, Venue, write_pools_file
from adapters.solana.programs import (
    METEORA_DAMM_V2_PROGRAM_ID,
    RAYDIUM_CPMM_DEVNET_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    associated_token_address,
    cpmm_authority,
)
from adapters.solana.raydium_cpmm_layouts import decode_cpmm_pool_state
from adapters.solana.token_layouts import MINT_SIZE, Mint, encode_mint

DEFAULT_SEED = b"orderengine-localnet"
LAMPORTS_PER_SOL = 10**9
USDC_DECIMALS = USDT_DECIMALS = 6
_USD = 10**6
_OPENED_BEFORE_GENESIS = 3_600  # seconds: the pools were "created" an hour before genesis

# The house trader's holdings: enough to move any genesis pool a long way.
_HOUSE_SOL = 1_000 * LAMPORTS_PER_SOL  # lamports, for fees
_HOUSE_WRAPPED_SOL = 200_000 * LAMPORTS_PER_SOL
_HOUSE_STABLES = 50_000_000 * _USD


class GenesisError(Exception):
    """The chain cannot take this genesis (e.g. it does not run the pool programs)."""


class HouseSwapFailed(Exception):
    """The house trader's swap did not land (refused in preflight, or dropped by a fault)."""


@dataclass(frozen=True, eq=False)
class GenesisPool:
    """One pool genesis made: where it is, which program runs it, and who trades it for the house."""

    venue: Venue
    pair: str
    address: Pubkey
    program_id: Pubkey
    house_trader: Keypair = field(repr=False)


@dataclass(frozen=True, eq=False)
class GenesisResult:
    """What genesis made. `wallet_funding` is in base units by symbol (lamports for SOL)."""

    wallet: Pubkey
    mints: dict[str, Pubkey]
    mint_authority: Keypair = field(repr=False)
    house_trader: Keypair = field(repr=False)
    pools: tuple[GenesisPool, ...] = ()
    pools_file: PoolsFile = field(default_factory=PoolsFile)
    pools_path: Path = Path()
    wallet_funding: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for a person: the wallet's funding and the pools."""
        decimals = {"SOL": 9, "USDC": USDC_DECIMALS, "USDT": USDT_DECIMALS}
        funding = ", ".join(
            f"{amount / 10 ** decimals[symbol]:,.0f} {symbol}"
            for symbol, amount in self.wallet_funding.items()
        )
        pools = ", ".join(f"{pool.venue} {pool.pair} {pool.address}" for pool in self.pools)
        return f"wallet {self.wallet} holds {funding}; pools: {pools}"

    def pool(self, venue: Venue, pair: str) -> GenesisPool:
        """The genesis pool of `venue` for `pair` ("SOL/USDC"); KeyError if there is none."""
        for pool in self.pools:
            if pool.venue == venue and pool.pair == pair:
                return pool
        raise KeyError(f"no {venue} {pair} pool at genesis")


def pool_programs(raydium_program_id: Pubkey = RAYDIUM_CPMM_DEVNET_PROGRAM_ID) -> list[EmulatedProgram]:
    """The emulated pool programs a genesis chain runs: `LocalChain(emulated_programs=pool_programs())`."""
    return [RaydiumCpmmProgram(raydium_program_id), MeteoraDammV2Program()]


def derived_keypair(seed: bytes, label: str) -> Keypair:
    """A keypair that depends only on (seed, label)."""
    return Keypair.from_seed(hashlib.sha256(seed + b"/" + label.encode()).digest())


def create_genesis(
    chain: LocalChain,
    wallet: Pubkey,
    *,
    pools_file: Path,
    seed: bytes = DEFAULT_SEED,
    wallet_sol: int = 100 * LAMPORTS_PER_SOL,
    wallet_usdc: int = 100_000 * _USD,
    wallet_usdt: int = 100_000 * _USD,
    raydium_program_id: Pubkey = RAYDIUM_CPMM_DEVNET_PROGRAM_ID,
) -> GenesisResult:
    """Mints, a funded `wallet`, three pools and a house trader on `chain`; writes `pools_file`.

    Amounts are in base units (lamports, micro-USDC). Raises GenesisError if the chain
    does not run both pool programs.
    """
    for program_id in (raydium_program_id, METEORA_DAMM_V2_PROGRAM_ID):
        if not _runs_emulated_program(chain, program_id, wallet):
            raise GenesisError(
                f"the chain does not run {program_id}: build it with "
                "LocalChain(emulated_programs=pool_programs(...))"
            )
    _seed_native_mint(chain)
    mint_authority = derived_keypair(seed, "mint-authority")
    house = derived_keypair(seed, "house-trader")
    usdc = derived_keypair(seed, "mint/USDC").pubkey()
    usdt = derived_keypair(seed, "mint/USDT").pubkey()
    creator = derived_keypair(seed, "pool-creator").pubkey()
    clock = chain.clock
    opened = max(clock.unix_timestamp - _OPENED_BEFORE_GENESIS, 0)

    ledger = Ledger(chain)
    ledger.mint(usdc, USDC_DECIMALS, mint_authority.pubkey())
    ledger.mint(usdt, USDT_DECIMALS, mint_authority.pubkey())
    chain.airdrop(wallet, wallet_sol)
    ledger.associated_account(wallet, usdc, wallet_usdc)
    ledger.associated_account(wallet, usdt, wallet_usdt)
    chain.airdrop(house.pubkey(), _HOUSE_SOL)
    ledger.associated_account(house.pubkey(), NATIVE_MINT, _HOUSE_WRAPPED_SOL)
    ledger.associated_account(house.pubkey(), usdc, _HOUSE_STABLES)
    ledger.associated_account(house.pubkey(), usdt, _HOUSE_STABLES)

    def sol_side(sol: int) -> Side:
        return Side(NATIVE_MINT, 9, sol * LAMPORTS_PER_SOL)

    def usd_side(mint: Pubkey, usd: int) -> Side:
        return Side(mint, USDC_DECIMALS, usd * _USD)

    standard = create_cpmm_config(ledger, raydium_program_id, CpmmConfig(0, 2_500), creator)
    stable = create_cpmm_config(ledger, raydium_program_id, CpmmConfig(1, 100), creator)
    raydium_sol_usdc = create_cpmm_pool(
        ledger,
        raydium_program_id,
        standard,
        sol_side(10_000),
        usd_side(usdc, 1_500_000),
        creator=creator,
        open_time=opened,
        epoch=clock.epoch,
    )
    raydium_usdc_usdt = create_cpmm_pool(
        ledger,
        raydium_program_id,
        stable,
        usd_side(usdc, 1_000_000),
        usd_side(usdt, 1_000_000),
        creator=creator,
        open_time=opened,
        epoch=clock.epoch,
    )
    meteora_sol_usdc = create_damm_v2_pool(
        ledger,
        derived_keypair(seed, "damm-v2-config").pubkey(),
        sol_side(6_000),
        usd_side(usdc, 903_000),
        cliff_fee_numerator=3_000_000,
        creator=creator,
        activation_point=opened,
    )
    ledger.finish()

    pools = (
        GenesisPool("raydium", "SOL/USDC", raydium_sol_usdc, raydium_program_id, house),
        GenesisPool("meteora", "SOL/USDC", meteora_sol_usdc, METEORA_DAMM_V2_PROGRAM_ID, house),
        GenesisPool("raydium", "USDC/USDT", raydium_usdc_usdt, raydium_program_id, house),
    )
    book = PoolsFile(
        cluster="localnet",
        tokens={"SOL": str(NATIVE_MINT), "USDC": str(usdc), "USDT": str(usdt)},
        pools=[
            PoolEntry(
                pair=pool.pair,
                venue=pool.venue,
                address=str(pool.address),
                program_id=None
                if str(pool.program_id) == DEFAULT_PROGRAMS["localnet"][pool.venue]
                else str(pool.program_id),
            )
            for pool in pools
        ],
    )
    write_pools_file(pools_file, book)
    return GenesisResult(
        wallet=wallet,
        mints={"SOL": NATIVE_MINT, "USDC": usdc, "USDT": usdt},
        mint_authority=mint_authority,
        house_trader=house,
        pools=pools,
        pools_file=book,
        pools_path=pools_file,
        wallet_funding={"SOL": wallet_sol, "USDC": wallet_usdc, "USDT": wallet_usdt},
    )


def _runs_emulated_program(chain: LocalChain, program_id: Pubkey, payer: Pubkey) -> bool:
    """Whether an instruction to `program_id` gets past loading (a simulation; nothing is kept)."""
    probe = Instruction(program_id, b"", [])
    message = MessageV0.try_compile(payer, [probe], [], chain.latest_blockhash[0])
    result = chain.simulate(VersionedTransaction.populate(message, [Signature.default()]))
    return bool(result.err != TransactionErrorFieldless.InvalidProgramForExecution)


def _seed_native_mint(chain: LocalChain) -> None:
    """LiteSVM starts without the wrapped-SOL mint; `LocalChain` adds it, but a genesis makes sure."""
    if chain.get_account(NATIVE_MINT) is None:
        rent = chain.minimum_balance_for_rent_exemption(MINT_SIZE)
        chain.set_account(
            NATIVE_MINT, Account(rent, encode_mint(Mint(None, 0, 9, True, None)), TOKEN_PROGRAM_ID, False, 0)
        )


# ---- the house trader ------------------------------------------------------------------------------------


def swap_as_house(
    chain: LocalChain,
    pool: GenesisPool,
    token_in_mint: Pubkey,
    amount_in: int,
    *,
    minimum_amount_out: int = 0,
) -> Signature:
    """The house trader swaps `amount_in` of `token_in_mint` on `pool` in a signed transaction.

    It lands at once, as any sent transaction (a drop or hold fault would apply to it:
    then HouseSwapFailed). The trader's associated accounts for the genesis tokens
    already exist, so the swap is the transaction's only instruction besides a compute
    limit that keeps repeated equal swaps from having equal signatures.
    """
    trader = pool.house_trader
    account = chain.get_account(pool.address)
    if account is None:
        raise ValueError(f"no pool account at {pool.address}")
    if pool.venue == "raydium":
        ix = _cpmm_swap(pool, account.data, trader.pubkey(), token_in_mint, amount_in, minimum_amount_out)
    else:
        ix = _damm_v2_swap(pool, account.data, trader.pubkey(), token_in_mint, amount_in, minimum_amount_out)
    nonce = len(chain.landed_signatures(trader.pubkey())) % 100_000
    message = MessageV0.try_compile(
        trader.pubkey(), [set_compute_unit_limit(400_000 - nonce), ix], [], chain.latest_blockhash[0]
    )
    try:
        signature = chain.send(VersionedTransaction(message, [trader]))
    except PreflightFailure as failure:
        raise HouseSwapFailed(f"the house swap on {pool.address} failed: {failure.result.err}") from failure
    if chain.transaction(signature) is None:
        raise HouseSwapFailed(f"the house swap on {pool.address} did not land (a fault is active)")
    return signature


def _cpmm_swap(
    pool: GenesisPool, data: bytes, trader: Pubkey, mint_in: Pubkey, amount_in: int, minimum_amount_out: int
) -> Instruction:
    state = decode_cpmm_pool_state(data)
    sides = {
        state.token_0_mint: (state.token_0_vault, state.token_0_program),
        state.token_1_mint: (state.token_1_vault, state.token_1_program),
    }
    if mint_in not in sides:
        raise ValueError(f"{mint_in} is not a token of pool {pool.address}")
    mint_out = state.token_1_mint if mint_in == state.token_0_mint else state.token_0_mint
    (vault_in, program_in), (vault_out, program_out) = sides[mint_in], sides[mint_out]
    accounts = CpmmSwapAccounts(
        payer=trader,
        authority=cpmm_authority(pool.program_id),
        amm_config=state.amm_config,
        pool_state=pool.address,
        input_token_account=associated_token_address(trader, mint_in, program_in),
        output_token_account=associated_token_address(trader, mint_out, program_out),
        input_vault=vault_in,
        output_vault=vault_out,
        input_token_program=program_in,
        output_token_program=program_out,
        input_token_mint=mint_in,
        output_token_mint=mint_out,
        observation_state=state.observation_key,
    )
    return cpmm_swap_base_input(pool.program_id, accounts, amount_in, minimum_amount_out)


def _damm_v2_swap(
    pool: GenesisPool, data: bytes, trader: Pubkey, mint_in: Pubkey, amount_in: int, minimum_amount_out: int
) -> Instruction:
    state = decode_damm_v2_pool(data)
    program_a = TOKEN_2022_PROGRAM_ID if state.token_a_flag else TOKEN_PROGRAM_ID
    program_b = TOKEN_2022_PROGRAM_ID if state.token_b_flag else TOKEN_PROGRAM_ID
    if mint_in == state.token_a_mint:
        account_in = associated_token_address(trader, state.token_a_mint, program_a)
        account_out = associated_token_address(trader, state.token_b_mint, program_b)
    elif mint_in == state.token_b_mint:
        account_in = associated_token_address(trader, state.token_b_mint, program_b)
        account_out = associated_token_address(trader, state.token_a_mint, program_a)
    else:
        raise ValueError(f"{mint_in} is not a token of pool {pool.address}")
    accounts = DammV2SwapAccounts(
        pool=pool.address,
        input_token_account=account_in,
        output_token_account=account_out,
        token_a_vault=state.token_a_vault,
        token_b_vault=state.token_b_vault,
        token_a_mint=state.token_a_mint,
        token_b_mint=state.token_b_mint,
        payer=trader,
        token_a_program=program_a,
        token_b_program=program_b,
    )
    return damm_v2_swap(accounts, amount_in, minimum_amount_out)

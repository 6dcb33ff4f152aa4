"""The accounts a local chain's genesis writes: mints, token accounts and the two kinds of pool.

Every account is written in the real program's layout and owned by the real program
id, at the address the real program would have used (the pools, vaults, configs and
observation at their PDAs), so a client cannot tell these pools from ones the
programs' own `initialize` made. The programs' initialize instructions are not
emulated, so the accounts are written directly (`LocalChain.set_account`), each with
its rent-exempt balance.

Raydium CPMM (`create_cpmm_pool`): the AmmConfig at `["amm_config", index]`; the pool
at `["pool", config, token_0, token_1]` with `token_0 < token_1` by bytes (the rule
`initialize` enforces); vaults at `["pool_vault", pool, mint]` owned by the authority
PDA; the LP mint at `["pool_lp_mint", pool]` (9 decimals) whose `liquidity − 100`
tokens sit in the creator's associated account (the program locks 100); the
observation at `["observation", pool]`, as `initialize` leaves it (not yet
initialized: the first swap stamps it).

Meteora DAMM v2 (`create_damm_v2_pool`): a full-range constant-fee pool from
`pool_from_reserves`, at `["pool", config, max(mint), min(mint)]`, vaults at
`["token_vault", mint, pool]` owned by the pool authority and holding exactly the
pool's reserves, `layout_version` 1, BothToken fee collection. No position account is
written: a swap never reads one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from solders.account import Account
from solders.pubkey import Pubkey

from adapters.localnet.chain import LocalChain
from adapters.localnet.token_accounts import NATIVE_MINT, TOKEN_PROGRAM_ID
from adapters.solana.meteora_damm_v2_layouts import DammV2PoolAccount, encode_damm_v2_pool
from adapters.solana.programs import (
    CPMM_AUTH_SEED,
    DAMM_V2_POOL_AUTHORITY,
    METEORA_DAMM_V2_PROGRAM_ID,
    associated_token_address,
    cpmm_lp_mint,
    cpmm_observation,
    cpmm_pool,
    cpmm_vault,
    damm_v2_pool,
    damm_v2_token_vault,
    find_pda,
)
from adapters.solana.raydium_cpmm_layouts import (
    CpmmAmmConfig,
    CpmmPoolState,
    encode_cpmm_amm_config,
    encode_cpmm_pool_state,
    new_cpmm_observation_state,
)
from adapters.solana.token_layouts import (
    ACCOUNT_STATE_INITIALIZED,
    Mint,
    TokenAccount,
    encode_mint,
    encode_token_account,
)
from domain.curves.cpmm import CpmmFeesOwed
from domain.curves.damm_v2 import ACTIVATION_BY_TIMESTAMP, COLLECT_FEE_BOTH_TOKEN, pool_from_reserves
from domain.curves.damm_v2_fees import DammV2Fees, TimeSchedulerFee

LP_MINT_DECIMALS = 9
LOCKED_LP = 100  # the LP tokens CPMM's initialize keeps back from the creator


class Ledger:
    """Writes accounts into a chain and keeps each mint's supply equal to what its accounts hold."""

    def __init__(self, chain: LocalChain) -> None:
        self.chain = chain
        self._mints: dict[Pubkey, tuple[Pubkey | None, int]] = {}
        self._supply: dict[Pubkey, int] = {}

    def put(self, address: Pubkey, data: bytes, owner: Pubkey, *, extra_lamports: int = 0) -> None:
        """A rent-exempt account holding `data` (plus `extra_lamports`)."""
        lamports = self.chain.minimum_balance_for_rent_exemption(len(data)) + extra_lamports
        self.chain.set_account(address, Account(lamports, data, owner, False, 0))

    def mint(self, address: Pubkey, decimals: int, authority: Pubkey | None) -> None:
        """Declare a mint; `finish` writes it with the supply its token accounts add up to."""
        self._mints[address] = (authority, decimals)
        self._supply.setdefault(address, 0)

    def token_account(self, address: Pubkey, owner: Pubkey, mint: Pubkey, amount: int) -> None:
        """An initialized SPL token account; a wrapped-SOL one holds its amount in lamports too."""
        rent = self.chain.minimum_balance_for_rent_exemption(165)
        native = rent if mint == NATIVE_MINT else None
        state = TokenAccount(mint, owner, amount, None, ACCOUNT_STATE_INITIALIZED, native, 0, None)
        self.put(
            address, encode_token_account(state), TOKEN_PROGRAM_ID, extra_lamports=amount if native else 0
        )
        if mint != NATIVE_MINT:
            self._supply[mint] = self._supply.get(mint, 0) + amount

    def associated_account(self, owner: Pubkey, mint: Pubkey, amount: int) -> Pubkey:
        address = associated_token_address(owner, mint, TOKEN_PROGRAM_ID)
        self.token_account(address, owner, mint, amount)
        return address

    def finish(self) -> None:
        """Write every declared mint with its supply."""
        for address, (authority, decimals) in self._mints.items():
            state = Mint(authority, self._supply[address], decimals, True, None)
            self.put(address, encode_mint(state), TOKEN_PROGRAM_ID)


@dataclass(frozen=True)
class Side:
    """One token of a pool: its mint, decimals and the amount the pool starts with."""

    mint: Pubkey
    decimals: int
    amount: int


@dataclass(frozen=True)
class CpmmConfig:
    """An AmmConfig's index and rates (over 1e6; protocol and fund are shares of the trade fee)."""

    index: int
    trade_fee_rate: int
    protocol_fee_rate: int = 120_000
    fund_fee_rate: int = 40_000
    creator_fee_rate: int = 0


def create_cpmm_config(ledger: Ledger, program_id: Pubkey, config: CpmmConfig, owner: Pubkey) -> Pubkey:
    """The AmmConfig account at its PDA."""
    address, bump = find_pda([b"amm_config", config.index.to_bytes(2, "big")], program_id)
    account = CpmmAmmConfig(
        bump=bump,
        disable_create_pool=False,
        index=config.index,
        trade_fee_rate=config.trade_fee_rate,
        protocol_fee_rate=config.protocol_fee_rate,
        fund_fee_rate=config.fund_fee_rate,
        create_pool_fee=0,
        protocol_owner=owner,
        fund_owner=owner,
        creator_fee_rate=config.creator_fee_rate,
    )
    ledger.put(address, encode_cpmm_amm_config(account), program_id)
    return address


def create_cpmm_pool(
    ledger: Ledger,
    program_id: Pubkey,
    amm_config: Pubkey,
    x: Side,
    y: Side,
    *,
    creator: Pubkey,
    open_time: int,
    epoch: int,
) -> Pubkey:
    """A CPMM pool of `x` and `y` (in either order) with all its accounts; returns its address."""
    side_0, side_1 = (x, y) if bytes(x.mint) < bytes(y.mint) else (y, x)
    authority, auth_bump = find_pda([CPMM_AUTH_SEED], program_id)
    pool = cpmm_pool(amm_config, side_0.mint, side_1.mint, program_id)
    vault_0 = cpmm_vault(pool, side_0.mint, program_id)
    vault_1 = cpmm_vault(pool, side_1.mint, program_id)
    ledger.token_account(vault_0, authority, side_0.mint, side_0.amount)
    ledger.token_account(vault_1, authority, side_1.mint, side_1.amount)
    liquidity = math.isqrt(side_0.amount * side_1.amount)
    lp_mint = cpmm_lp_mint(pool, program_id)
    ledger.mint(lp_mint, LP_MINT_DECIMALS, authority)
    ledger.associated_account(creator, lp_mint, liquidity - LOCKED_LP)
    observation = cpmm_observation(pool, program_id)
    ledger.put(observation, new_cpmm_observation_state(pool), program_id)
    state = CpmmPoolState(
        amm_config=amm_config,
        pool_creator=creator,
        token_0_vault=vault_0,
        token_1_vault=vault_1,
        lp_mint=lp_mint,
        token_0_mint=side_0.mint,
        token_1_mint=side_1.mint,
        token_0_program=TOKEN_PROGRAM_ID,
        token_1_program=TOKEN_PROGRAM_ID,
        observation_key=observation,
        auth_bump=auth_bump,
        status=0,
        lp_mint_decimals=LP_MINT_DECIMALS,
        mint_0_decimals=side_0.decimals,
        mint_1_decimals=side_1.decimals,
        lp_supply=liquidity,
        fees_owed=CpmmFeesOwed(),
        open_time=open_time,
        recent_epoch=epoch,
    )
    ledger.put(pool, encode_cpmm_pool_state(state), program_id)
    return pool


def create_damm_v2_pool(
    ledger: Ledger,
    config: Pubkey,
    a: Side,
    b: Side,
    *,
    cliff_fee_numerator: int,
    creator: Pubkey,
    activation_point: int,
    protocol_fee_percent: int = 20,
    referral_fee_percent: int = 20,
) -> Pubkey:
    """A full-range constant-fee DAMM v2 pool holding about `a.amount`/`b.amount`; its address."""
    pool = damm_v2_pool(config, a.mint, b.mint)
    vault_a, vault_b = damm_v2_token_vault(a.mint, pool), damm_v2_token_vault(b.mint, pool)
    curve = pool_from_reserves(a.amount, b.amount)
    ledger.token_account(vault_a, DAMM_V2_POOL_AUTHORITY, a.mint, curve.token_a_amount)
    ledger.token_account(vault_b, DAMM_V2_POOL_AUTHORITY, b.mint, curve.token_b_amount)
    fees = DammV2Fees(
        base_fee=TimeSchedulerFee(cliff_fee_numerator),
        protocol_fee_percent=protocol_fee_percent,
        referral_fee_percent=referral_fee_percent,
        init_sqrt_price=curve.sqrt_price,
    )
    account = DammV2PoolAccount(
        pool_fees=fees,
        token_a_mint=a.mint,
        token_b_mint=b.mint,
        token_a_vault=vault_a,
        token_b_vault=vault_b,
        whitelisted_vault=Pubkey.default(),
        liquidity=curve.liquidity,
        sqrt_min_price=curve.sqrt_min_price,
        sqrt_max_price=curve.sqrt_max_price,
        sqrt_price=curve.sqrt_price,
        activation_point=activation_point,
        activation_type=ACTIVATION_BY_TIMESTAMP,
        collect_fee_mode=COLLECT_FEE_BOTH_TOKEN,
        fee_version=1,
        creator=creator,
        token_a_amount=curve.token_a_amount,
        token_b_amount=curve.token_b_amount,
        layout_version=1,
    )
    ledger.put(pool, encode_damm_v2_pool(account), METEORA_DAMM_V2_PROGRAM_ID)
    return pool

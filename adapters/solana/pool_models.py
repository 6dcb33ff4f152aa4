"""How each venue's pool is read, priced and swapped on: Raydium CPMM and Meteora DAMM v2.

A model knows its program's accounts. `layout(first)` turns the pool account (read once,
then cached: its vaults, mints and config never change) into the fixed addresses every
quote needs; `accounts(layout, …)` lists what one `getMultipleAccounts` must read for a
quote; `price(...)` decodes that answer and prices the amount with the program's own
math (domain/curves), so the quote is what the program will pay; `swap_instruction(...)`
is the program's exact-input swap with the order's minimum output.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from fractions import Fraction
from typing import Protocol

import msgspec
from solders.account import Account
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from adapters.solana.instructions import (
    CpmmSwapAccounts,
    DammV2SwapAccounts,
    cpmm_swap_base_input,
    damm_v2_swap,
)
from adapters.solana.layout_fields import LayoutError
from adapters.solana.meteora_damm_v2_layouts import DammV2PoolAccount, decode_damm_v2_pool
from adapters.solana.programs import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, cpmm_authority
from adapters.solana.raydium_cpmm_layouts import (
    CpmmPoolState,
    cpmm_curve_inputs,
    decode_cpmm_amm_config,
    decode_cpmm_pool_state,
)
from adapters.solana.token_layouts import decode_token_account
from domain.curves import cpmm, damm_v2
from domain.curves.errors import UnsupportedPool

CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
_CLOCK = struct.Struct("<QqQQq")  # slot, epoch_start_timestamp, epoch, leader_schedule_epoch, unix_timestamp


class PoolUnavailable(Exception):
    """The pool cannot be quoted now (missing, disabled, not open, unreadable): left out of
    routing with this reason."""


class ChainClock(msgspec.Struct, frozen=True):
    slot: int
    unix_timestamp: int


class PoolLayout(msgspec.Struct, frozen=True):
    """A pool's fixed addresses and facts, read once from its account."""

    pool: Pubkey
    program_id: Pubkey
    config: Pubkey | None  # Raydium's AmmConfig; Meteora keeps fees in the pool
    mint_0: Pubkey  # token_0 (Raydium) / token_a (Meteora)
    mint_1: Pubkey
    vault_0: Pubkey
    vault_1: Pubkey
    program_0: Pubkey
    program_1: Pubkey
    observation: Pubkey | None = None
    decimals_0: int | None = None
    decimals_1: int | None = None


class PricedSwap(msgspec.Struct, frozen=True):
    """A swap of `amount_in` raw units priced on the pool as read."""

    amount_in: int
    amount_out: int
    fee_rate: Fraction
    spot_price: Fraction  # raw output units per raw input unit, before fee and impact
    price_impact: Fraction
    reserve_in: int


class PoolModel(Protocol):
    venue: str

    def layout(self, address: Pubkey, account: Account) -> PoolLayout: ...

    def accounts(self, layout: PoolLayout) -> list[Pubkey]:
        """What one quote reads, in order (the pool first, the clock last)."""
        ...

    def price(
        self, layout: PoolLayout, accounts: Sequence[Account | None], mint_in: Pubkey, amount_in: int
    ) -> PricedSwap: ...

    def swap_instruction(
        self,
        layout: PoolLayout,
        *,
        wallet: Pubkey,
        input_account: Pubkey,
        output_account: Pubkey,
        mint_in: Pubkey,
        amount_in: int,
        minimum_out: int,
    ) -> Instruction: ...


def decode_clock(account: Account | None) -> ChainClock:
    if account is None or len(account.data) < _CLOCK.size:
        raise PoolUnavailable("the RPC did not return the Clock sysvar")
    slot, _, _, _, unix_timestamp = _CLOCK.unpack_from(account.data)
    return ChainClock(slot=slot, unix_timestamp=unix_timestamp)


def _owned(account: Account | None, program_id: Pubkey, what: str) -> Account:
    if account is None:
        raise PoolUnavailable(f"{what} does not exist")
    if account.owner != program_id:
        raise PoolUnavailable(f"{what} is owned by {account.owner}, not {program_id}")
    return account


def _token_amount(account: Account | None, what: str) -> int:
    if account is None:
        raise PoolUnavailable(f"{what} does not exist")
    try:
        return decode_token_account(account.data).amount
    except LayoutError as exc:
        raise PoolUnavailable(f"{what} is not a token account: {exc}") from None


def _direction(layout: PoolLayout, mint_in: Pubkey) -> bool:
    """True when the input is token 0 / token A."""
    if mint_in == layout.mint_0:
        return True
    if mint_in == layout.mint_1:
        return False
    raise PoolUnavailable(f"the pool {layout.pool} does not trade {mint_in}")


class RaydiumCpmm:
    """Raydium CPMM: reserves are the vault balances less the fees owed; fees in AmmConfig."""

    venue = "raydium"

    def layout(self, address: Pubkey, account: Account) -> PoolLayout:
        state = self._state(address, account)
        return PoolLayout(
            pool=address,
            program_id=account.owner,
            config=state.amm_config,
            mint_0=state.token_0_mint,
            mint_1=state.token_1_mint,
            vault_0=state.token_0_vault,
            vault_1=state.token_1_vault,
            program_0=state.token_0_program,
            program_1=state.token_1_program,
            observation=state.observation_key,
            decimals_0=state.mint_0_decimals,
            decimals_1=state.mint_1_decimals,
        )

    def accounts(self, layout: PoolLayout) -> list[Pubkey]:
        assert layout.config is not None
        return [layout.pool, layout.config, layout.vault_0, layout.vault_1, CLOCK_SYSVAR]

    def price(
        self, layout: PoolLayout, accounts: Sequence[Account | None], mint_in: Pubkey, amount_in: int
    ) -> PricedSwap:
        pool_account, config_account, vault_0, vault_1, clock_account = accounts
        pool = _owned(pool_account, layout.program_id, f"Raydium pool {layout.pool}")
        state = self._state(layout.pool, pool)
        config = _owned(config_account, layout.program_id, f"Raydium AmmConfig {layout.config}")
        try:
            fees_config = decode_cpmm_amm_config(config.data)
        except LayoutError as exc:
            raise PoolUnavailable(f"Raydium AmmConfig {layout.config} is unreadable: {exc}") from None
        clock = decode_clock(clock_account)
        if state.status & 0b100:
            raise PoolUnavailable(f"Raydium pool {layout.pool} has swaps disabled (status {state.status})")
        if clock.unix_timestamp < state.open_time:
            raise PoolUnavailable(f"Raydium pool {layout.pool} opens at unix time {state.open_time}, not yet")
        curve_pool, fees = cpmm_curve_inputs(
            state,
            fees_config,
            _token_amount(vault_0, "the pool's token 0 vault"),
            _token_amount(vault_1, "the pool's token 1 vault"),
        )
        zero_for_one = _direction(layout, mint_in)
        result = cpmm.swap_base_input(
            curve_pool, fees, amount_in, zero_for_one=zero_for_one, unix_timestamp=clock.unix_timestamp
        )
        rate = fees.trade_fee_rate + (fees.creator_fee_rate if fees.enable_creator_fee else 0)
        return PricedSwap(
            amount_in=amount_in,
            amount_out=result.amount_out,
            fee_rate=Fraction(rate, 1_000_000),
            spot_price=cpmm.spot_price(curve_pool, zero_for_one=zero_for_one),
            price_impact=cpmm.price_impact(result),
            reserve_in=result.reserve_in,
        )

    def swap_instruction(
        self,
        layout: PoolLayout,
        *,
        wallet: Pubkey,
        input_account: Pubkey,
        output_account: Pubkey,
        mint_in: Pubkey,
        amount_in: int,
        minimum_out: int,
    ) -> Instruction:
        assert layout.config is not None and layout.observation is not None
        zero_for_one = _direction(layout, mint_in)
        accounts = CpmmSwapAccounts(
            payer=wallet,
            authority=cpmm_authority(layout.program_id),
            amm_config=layout.config,
            pool_state=layout.pool,
            input_token_account=input_account,
            output_token_account=output_account,
            input_vault=layout.vault_0 if zero_for_one else layout.vault_1,
            output_vault=layout.vault_1 if zero_for_one else layout.vault_0,
            input_token_program=layout.program_0 if zero_for_one else layout.program_1,
            output_token_program=layout.program_1 if zero_for_one else layout.program_0,
            input_token_mint=layout.mint_0 if zero_for_one else layout.mint_1,
            output_token_mint=layout.mint_1 if zero_for_one else layout.mint_0,
            observation_state=layout.observation,
        )
        return cpmm_swap_base_input(layout.program_id, accounts, amount_in, minimum_out)

    @staticmethod
    def _state(address: Pubkey, account: Account) -> CpmmPoolState:
        try:
            return decode_cpmm_pool_state(account.data)
        except LayoutError as exc:
            raise PoolUnavailable(f"{address} is not a Raydium CPMM pool: {exc}") from None


class MeteoraDammV2:
    """Meteora DAMM v2: concentrated-liquidity pricing from the pool's sqrt price and liquidity."""

    venue = "meteora"

    def layout(self, address: Pubkey, account: Account) -> PoolLayout:
        pool = self._pool(address, account)
        return PoolLayout(
            pool=address,
            program_id=account.owner,
            config=None,
            mint_0=pool.token_a_mint,
            mint_1=pool.token_b_mint,
            vault_0=pool.token_a_vault,
            vault_1=pool.token_b_vault,
            # The flags say which token program each side uses (1: Token-2022).
            program_0=TOKEN_PROGRAM_ID if pool.token_a_flag == 0 else TOKEN_2022_PROGRAM_ID,
            program_1=TOKEN_PROGRAM_ID if pool.token_b_flag == 0 else TOKEN_2022_PROGRAM_ID,
        )

    def accounts(self, layout: PoolLayout) -> list[Pubkey]:
        return [layout.pool, CLOCK_SYSVAR]

    def price(
        self, layout: PoolLayout, accounts: Sequence[Account | None], mint_in: Pubkey, amount_in: int
    ) -> PricedSwap:
        pool_account, clock_account = accounts
        account = _owned(pool_account, layout.program_id, f"Meteora pool {layout.pool}")
        pool = self._pool(layout.pool, account)
        clock = decode_clock(clock_account)
        curve_pool = pool.curve_pool()
        if pool.pool_status != 0:
            raise PoolUnavailable(f"Meteora pool {layout.pool} is disabled (pool_status {pool.pool_status})")
        now = clock.slot if pool.activation_type == 0 else clock.unix_timestamp
        if now < pool.activation_point:
            unit = "slot" if pool.activation_type == 0 else "unix time"
            raise PoolUnavailable(
                f"Meteora pool {layout.pool} activates at {unit} {pool.activation_point}, not yet"
            )
        if pool.token_a_flag or pool.token_b_flag:
            raise UnsupportedPool(f"Meteora pool {layout.pool} holds a Token-2022 token: not priced here")
        a_to_b = _direction(layout, mint_in)
        result = damm_v2.swap_exact_in(
            curve_pool,
            pool.pool_fees,
            amount_in,
            a_to_b,
            slot=clock.slot,
            unix_timestamp=clock.unix_timestamp,
        )
        if curve_pool.layout_version == 0:
            reserve_a, reserve_b = damm_v2.reserves_from_curve(curve_pool)
        else:
            reserve_a, reserve_b = curve_pool.token_a_amount, curve_pool.token_b_amount
        return PricedSwap(
            amount_in=amount_in,
            amount_out=result.amount_out,
            fee_rate=Fraction(result.fee_numerator, 1_000_000_000),
            spot_price=damm_v2.spot_price(curve_pool, a_to_b=a_to_b),
            price_impact=damm_v2.price_impact(curve_pool, result),
            reserve_in=reserve_a if a_to_b else reserve_b,
        )

    def swap_instruction(
        self,
        layout: PoolLayout,
        *,
        wallet: Pubkey,
        input_account: Pubkey,
        output_account: Pubkey,
        mint_in: Pubkey,
        amount_in: int,
        minimum_out: int,
    ) -> Instruction:
        _direction(layout, mint_in)  # refuses a mint the pool does not trade
        accounts = DammV2SwapAccounts(
            pool=layout.pool,
            input_token_account=input_account,
            output_token_account=output_account,
            token_a_vault=layout.vault_0,
            token_b_vault=layout.vault_1,
            token_a_mint=layout.mint_0,
            token_b_mint=layout.mint_1,
            payer=wallet,
            token_a_program=layout.program_0,
            token_b_program=layout.program_1,
            program=layout.program_id,
        )
        return damm_v2_swap(accounts, amount_in, minimum_out)

    @staticmethod
    def _pool(address: Pubkey, account: Account) -> DammV2PoolAccount:
        try:
            return decode_damm_v2_pool(account.data)
        except LayoutError as exc:
            raise PoolUnavailable(f"{address} is not a Meteora DAMM v2 pool: {exc}") from None


MODELS: dict[str, PoolModel] = {"raydium": RaydiumCpmm(), "meteora": MeteoraDammV2()}

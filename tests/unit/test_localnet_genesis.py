"""The local chain's genesis: the pools file, the funded wallet, and pools the real programs would
recognize (their layouts, owners and PDAs). The swaps themselves are in test_localnet_pool_programs."""

from __future__ import annotations

from pathlib import Path

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from adapters.localnet.ata import AssociatedTokenAccountProgram
from adapters.localnet.chain import LocalChain
from adapters.localnet.genesis import (
    GenesisError,
    GenesisResult,
    create_genesis,
    pool_programs,
)
from adapters.solana.meteora_damm_v2_layouts import decode_damm_v2_pool
from adapters.solana.pool_config import load_pool_book
from adapters.solana.programs import (
    DAMM_V2_POOL_AUTHORITY,
    METEORA_DAMM_V2_PROGRAM_ID,
    RAYDIUM_CPMM_DEVNET_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    WSOL_MINT,
    associated_token_address,
    cpmm_authority,
    cpmm_observation,
    cpmm_pool,
    cpmm_vault,
    damm_v2_token_vault,
)
from adapters.solana.raydium_cpmm_layouts import (
    decode_cpmm_amm_config,
    decode_cpmm_observation_state,
    decode_cpmm_pool_state,
)
from adapters.solana.token_layouts import decode_mint, decode_token_account
from domain.curves import damm_v2, damm_v2_fees

SOL = 10**9
USD = 10**6


def genesis_on_new_chain(path: Path, *, seed: bytes | None = None) -> tuple[LocalChain, GenesisResult]:
    chain = LocalChain(emulated_programs=pool_programs())
    wallet = Keypair().pubkey()
    if seed is None:
        return chain, create_genesis(chain, wallet, pools_file=path)
    return chain, create_genesis(chain, wallet, pools_file=path, seed=seed)


def data(chain: LocalChain, address: Pubkey, owner: Pubkey) -> bytes:
    account = chain.get_account(address)
    assert account is not None, f"no account at {address}"
    assert account.owner == owner
    return account.data


def token_amount(chain: LocalChain, address: Pubkey) -> int:
    return decode_token_account(data(chain, address, TOKEN_PROGRAM_ID)).amount


def test_genesis_writes_a_pools_file_the_engine_loads(tmp_path: Path) -> None:
    _, genesis = genesis_on_new_chain(tmp_path / "pools.json")

    book = load_pool_book(tmp_path / "pools.json")

    assert book.cluster == "localnet"
    assert [(p.venue, p.base, p.quote, p.address) for p in book.pools] == [
        (p.venue, *p.pair.split("/"), p.address) for p in genesis.pools
    ]
    assert {p.program_id for p in book.pools} == {RAYDIUM_CPMM_DEVNET_PROGRAM_ID, METEORA_DAMM_V2_PROGRAM_ID}
    assert book.pool_for("raydium", "USDC", "USDT") is not None
    assert book.pools[0].quote_mint == genesis.mints["USDC"]


def test_the_same_seed_writes_the_same_file_and_another_seed_another(tmp_path: Path) -> None:
    genesis_on_new_chain(tmp_path / "a.json")
    genesis_on_new_chain(tmp_path / "b.json")
    genesis_on_new_chain(tmp_path / "c.json", seed=b"another")

    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    assert (tmp_path / "a.json").read_text() != (tmp_path / "c.json").read_text()


def test_genesis_refuses_a_chain_that_does_not_run_the_pool_programs(tmp_path: Path) -> None:
    chain = LocalChain(emulated_programs=[AssociatedTokenAccountProgram()])

    with pytest.raises(GenesisError, match="pool_programs"):
        create_genesis(chain, Keypair().pubkey(), pools_file=tmp_path / "pools.json")

    assert not (tmp_path / "pools.json").exists()


def test_the_wallet_gets_sol_and_test_tokens_of_mints_the_chain_controls(tmp_path: Path) -> None:
    chain, genesis = genesis_on_new_chain(tmp_path / "pools.json")

    assert chain.get_balance(genesis.wallet) == 100 * SOL
    for symbol in ("USDC", "USDT"):
        mint = genesis.mints[symbol]
        assert token_amount(chain, associated_token_address(genesis.wallet, mint)) == 100_000 * USD
        state = decode_mint(data(chain, mint, TOKEN_PROGRAM_ID))
        assert (state.decimals, state.mint_authority) == (6, genesis.mint_authority.pubkey())
    assert "100 SOL" in genesis.summary() and str(genesis.wallet) in genesis.summary()


def test_a_mints_supply_is_what_its_accounts_hold(tmp_path: Path) -> None:
    chain, genesis = genesis_on_new_chain(tmp_path / "pools.json")
    usdc = genesis.mints["USDC"]
    holders = [
        associated_token_address(genesis.wallet, usdc),
        associated_token_address(genesis.house_trader.pubkey(), usdc),
    ]
    for pool in genesis.pools:
        account = chain.get_account(pool.address)
        assert account is not None
        if pool.venue == "raydium":
            state = decode_cpmm_pool_state(account.data)
            holders += [
                v
                for v, m in (
                    (state.token_0_vault, state.token_0_mint),
                    (state.token_1_vault, state.token_1_mint),
                )
                if m == usdc
            ]
        else:
            holders.append(decode_damm_v2_pool(account.data).token_b_vault)

    supply = decode_mint(data(chain, usdc, TOKEN_PROGRAM_ID)).supply

    assert supply == sum(token_amount(chain, holder) for holder in holders)


def test_the_raydium_pools_sit_at_the_programs_addresses_in_its_layout(tmp_path: Path) -> None:
    chain, genesis = genesis_on_new_chain(tmp_path / "pools.json")
    program = RAYDIUM_CPMM_DEVNET_PROGRAM_ID
    authority = cpmm_authority(program)
    for pair, trade_fee, reserves in (
        ("SOL/USDC", 2_500, {WSOL_MINT: 10_000 * SOL, genesis.mints["USDC"]: 1_500_000 * USD}),
        ("USDC/USDT", 100, {genesis.mints["USDC"]: 1_000_000 * USD, genesis.mints["USDT"]: 1_000_000 * USD}),
    ):
        pool = genesis.pool("raydium", pair)
        state = decode_cpmm_pool_state(data(chain, pool.address, program))
        config = decode_cpmm_amm_config(data(chain, state.amm_config, program))
        assert bytes(state.token_0_mint) < bytes(state.token_1_mint)
        assert pool.address == cpmm_pool(state.amm_config, state.token_0_mint, state.token_1_mint, program)
        assert (
            config.trade_fee_rate,
            config.protocol_fee_rate,
            config.fund_fee_rate,
            config.creator_fee_rate,
        ) == (trade_fee, 120_000, 40_000, 0)
        for vault, mint in (
            (state.token_0_vault, state.token_0_mint),
            (state.token_1_vault, state.token_1_mint),
        ):
            assert vault == cpmm_vault(pool.address, mint, program)
            vault_state = decode_token_account(data(chain, vault, TOKEN_PROGRAM_ID))
            assert (vault_state.owner, vault_state.mint, vault_state.amount) == (
                authority,
                mint,
                reserves[mint],
            )
        assert state.observation_key == cpmm_observation(pool.address, program)
        observation = decode_cpmm_observation_state(data(chain, state.observation_key, program))
        assert observation.pool_id == pool.address and not observation.initialized
        assert state.status == 0 and state.open_time < chain.clock.unix_timestamp


def test_the_meteora_pool_is_a_full_range_constant_fee_pool_owned_by_the_program(tmp_path: Path) -> None:
    chain, genesis = genesis_on_new_chain(tmp_path / "pools.json")
    pool = genesis.pool("meteora", "SOL/USDC")

    state = decode_damm_v2_pool(data(chain, pool.address, METEORA_DAMM_V2_PROGRAM_ID))

    assert (state.token_a_mint, state.token_b_mint) == (WSOL_MINT, genesis.mints["USDC"])
    base_fee = state.pool_fees.base_fee
    assert isinstance(base_fee, damm_v2_fees.TimeSchedulerFee)
    assert (base_fee.cliff_fee_numerator, base_fee.period_frequency) == (3_000_000, 0)  # 0.30%, constant
    assert state.pool_fees.dynamic_fee.initialized == 0
    assert (state.sqrt_min_price, state.sqrt_max_price) == (damm_v2.MIN_SQRT_PRICE, damm_v2.MAX_SQRT_PRICE)
    assert (state.layout_version, state.collect_fee_mode, state.pool_status) == (1, 0, 0)
    assert state.activation_type == damm_v2.ACTIVATION_BY_TIMESTAMP
    assert state.activation_point < chain.clock.unix_timestamp
    for vault, mint, reserve in (
        (state.token_a_vault, state.token_a_mint, state.token_a_amount),
        (state.token_b_vault, state.token_b_mint, state.token_b_amount),
    ):
        assert vault == damm_v2_token_vault(mint, pool.address)
        vault_state = decode_token_account(data(chain, vault, TOKEN_PROGRAM_ID))
        assert (vault_state.owner, vault_state.amount) == (DAMM_V2_POOL_AUTHORITY, reserve)
    assert 5_999 * SOL < state.token_a_amount <= 6_000 * SOL
    assert 902_999 * USD < state.token_b_amount <= 903_000 * USD
    price = damm_v2.spot_price(state.curve_pool(), a_to_b=True) * SOL / USD  # USDC per SOL
    assert 150.4 < price < 150.6

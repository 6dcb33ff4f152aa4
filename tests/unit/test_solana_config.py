"""The wallet key and the pools file: what they accept, and what a refusal says (never the key)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from adapters.solana.pool_config import (
    METEORA_DAMM_V2,
    RAYDIUM_CPMM_DEVNET,
    RAYDIUM_CPMM_MAINNET,
    PoolConfigError,
    PoolEntry,
    PoolsFile,
    load_pool_book,
    write_pools_file,
)
from adapters.solana.wallet import WalletKeyError, load_keypair
from domain.tokens import NATIVE_SOL_MINT

USDC = str(Keypair().pubkey())
POOL_A, POOL_B = str(Keypair().pubkey()), str(Keypair().pubkey())


def test_a_base58_secret_key_and_a_json_byte_array_name_the_same_wallet() -> None:
    keypair = Keypair()
    assert load_keypair(str(keypair)).pubkey() == keypair.pubkey()
    assert load_keypair(json.dumps(list(bytes(keypair)))).pubkey() == keypair.pubkey()
    assert load_keypair(json.dumps(list(bytes(keypair)[:32]))).pubkey() == keypair.pubkey()  # a seed


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "is empty"),
        ("not base58 at all 0OIl", "neither a JSON byte array nor a base58"),
        ("[1, 2, 3]", "decodes to 3 bytes"),
        ("[1, 999]", "array of byte values"),
        ("[1, 2", "not a JSON array"),
    ],
)
def test_a_wallet_key_that_is_not_one_is_refused_without_echoing_it(value: str, says: str) -> None:
    with pytest.raises(WalletKeyError, match=says) as refused:
        load_keypair(value)
    assert not value or value not in str(refused.value)


def test_a_secret_key_whose_public_half_does_not_match_is_refused() -> None:
    forged = bytes(Keypair())[:32] + bytes(Keypair().pubkey())
    with pytest.raises(WalletKeyError, match="public half does not match"):
        load_keypair(json.dumps(list(forged)))


def book_file(tmp_path: Path, **overrides: object) -> Path:
    content: dict[str, object] = {
        "cluster": "devnet",
        "tokens": {"USDC": USDC},
        "pools": [
            {"pair": "SOL/USDC", "venue": "raydium", "address": POOL_A},
            {"pair": "SOL/USDC", "venue": "meteora", "address": POOL_B},
        ],
    }
    content.update(overrides)
    path = tmp_path / "pools.json"
    path.write_text(json.dumps(content))
    return path


def test_a_pools_file_gives_each_venue_its_pool_in_both_directions_with_the_cluster_program(
    tmp_path: Path,
) -> None:
    book = load_pool_book(book_file(tmp_path))
    raydium = book.pool_for("raydium", "USDC", "SOL")
    meteora = book.pool_for("meteora", "SOL", "USDC")
    assert raydium is not None and str(raydium.address) == POOL_A
    assert str(raydium.program_id) == RAYDIUM_CPMM_DEVNET
    assert meteora is not None and str(meteora.program_id) == METEORA_DAMM_V2
    assert str(raydium.mint_of("SOL")) == NATIVE_SOL_MINT and str(raydium.mint_of("USDC")) == USDC
    assert book.pool_for("raydium", "SOL", "USDT") is None


def test_mainnet_pools_use_the_mainnet_program_unless_the_entry_names_one(tmp_path: Path) -> None:
    book = load_pool_book(book_file(tmp_path, cluster="mainnet"))
    assert str(book.pools[0].program_id) == RAYDIUM_CPMM_MAINNET


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"tokens": {"DOGE": USDC}}, "token 'DOGE' is not one the engine trades"),
        ({"tokens": {"USDC": "not-a-key"}}, "the mint of USDC is not a base58 public key"),
        ({"pools": [{"pair": "SOL-USDC", "venue": "raydium", "address": POOL_A}]}, "pair must be two"),
        (
            {"pools": [{"pair": "USDT/BONK", "venue": "raydium", "address": POOL_A}]},
            "`tokens` names the mint of neither USDT nor BONK",
        ),
        (
            {"pools": [{"pair": "SOL/USDC", "venue": "orca", "address": POOL_A}]},
            "Invalid enum value 'orca' - at `$.pools[0].venue`",
        ),
        (
            {"pools": [{"pair": "SOL/USDC", "venue": "raydium", "address": POOL_A}] * 2},
            "already has a raydium pool",
        ),
    ],
)
def test_a_wrong_pools_file_is_refused_naming_the_file_and_the_entry(
    tmp_path: Path, overrides: dict[str, object], says: str
) -> None:
    path = book_file(tmp_path, **overrides)
    with pytest.raises(PoolConfigError, match=re.escape(says)) as refused:
        load_pool_book(path)
    assert str(path) in str(refused.value)


def test_a_missing_pools_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(PoolConfigError, match="orderengine localnet"):
        load_pool_book(tmp_path / "absent.json")


def test_a_written_pools_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "pools.json"
    written = PoolsFile(
        cluster="localnet",
        tokens={"USDC": USDC},
        pools=[PoolEntry(pair="SOL/USDC", venue="meteora", address=POOL_B)],
    )
    write_pools_file(path, written)
    book = load_pool_book(path)
    assert book.cluster == "localnet" and [str(p.address) for p in book.pools] == [POOL_B]


def test_a_sol_pair_may_leave_the_other_mint_to_the_pool_account(tmp_path: Path) -> None:
    book = load_pool_book(book_file(tmp_path, tokens={}))
    pool = book.pool_for("raydium", "SOL", "USDC")
    assert pool is not None and pool.quote_mint is None
    other = Keypair().pubkey()
    resolved = pool.with_mints({other, Pubkey.from_string(NATIVE_SOL_MINT)})
    assert resolved.mint_of("USDC") == other and str(resolved.mint_of("SOL")) == NATIVE_SOL_MINT


def test_a_pool_whose_mints_are_not_the_files_is_refused_when_it_is_read(tmp_path: Path) -> None:
    pool = load_pool_book(book_file(tmp_path)).pools[0]
    with pytest.raises(PoolConfigError, match=f"pool {POOL_A} trades"):
        pool.with_mints({Keypair().pubkey(), Keypair().pubkey()})

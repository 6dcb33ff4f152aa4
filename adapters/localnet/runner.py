"""`orderengine localnet`: a fresh local chain with the test pools, served on 127.0.0.1.

It funds the wallet of `WALLET_PRIVATE_KEY` (or, when that is unset, of a wallet it
creates once in `DATA_DIR/localnet/wallet.json`, solana-keygen's format), creates the
test mints and the pools in the Raydium CPMM and Meteora DAMM v2 layouts, and writes
the pools file where the engine's default `SOLANA_POOLS_FILE` looks. Then

    USE_REAL_DEVNET=true DEVNET_RPC_URL=http://127.0.0.1:8899 ./scripts/run.sh

trades on it with the same wallet. The chain lives in memory: a restart is a new chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

from solders.keypair import Keypair

from adapters.localnet.chain import LocalChain
from adapters.localnet.rpc_server import serve
from adapters.settings import Settings
from adapters.solana.wallet import load_keypair

DEFAULT_PORT = 8899


def wallet_file(settings: Settings) -> Path:
    return settings.data_dir / "localnet" / "wallet.json"


def local_wallet(settings: Settings) -> tuple[Keypair, str]:
    """The wallet to fund and its secret as WALLET_PRIVATE_KEY takes it: the configured one,
    else the one kept in DATA_DIR/localnet/wallet.json (created on first use, mode 0600)."""
    if settings.wallet_private_key:
        return load_keypair(settings.wallet_private_key), settings.wallet_private_key
    path = wallet_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(list(bytes(Keypair())), out)
    secret = path.read_text().strip()
    return load_keypair(secret), secret


def start_chain(settings: Settings, wallet: Keypair) -> tuple[LocalChain, str]:
    """A new chain after genesis; a line saying what it holds."""
    from adapters.localnet.genesis import create_genesis, pool_programs

    chain = LocalChain(emulated_programs=pool_programs())
    genesis = create_genesis(chain, wallet.pubkey(), pools_file=settings.pools_path)
    return chain, genesis.summary()


def run_localnet(
    settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, slot_ms: int = 400
) -> int:
    wallet, _ = local_wallet(settings)
    chain, summary = start_chain(settings, wallet)
    print(f"Local chain: {summary}", flush=True)
    print(f"Pools written to {settings.pools_path}", flush=True)
    if not settings.wallet_private_key:
        print(f"Wallet {wallet.pubkey()}: WALLET_PRIVATE_KEY=$(cat {wallet_file(settings)})", flush=True)
    print(f"Local chain RPC on http://{host}:{port} (slot every {slot_ms} ms); Ctrl-C stops it", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(chain, host, port, slot_ms))
    return 0

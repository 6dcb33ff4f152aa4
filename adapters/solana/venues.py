"""The on-chain venues, built from the settings (USE_REAL_DEVNET=true): one RPC client,
the wallet, the pools file, and a Raydium CPMM and a Meteora DAMM v2 venue over them."""

from __future__ import annotations

from adapters.settings import Settings
from adapters.solana.onchain_dex import OnChainDex, OnChainPolicy
from adapters.solana.pool_config import load_pool_book
from adapters.solana.pool_models import MODELS
from adapters.solana.rpc import ChainRpc
from adapters.solana.wallet import load_keypair
from domain.ports import Dex


def make_onchain_venues(settings: Settings) -> tuple[dict[str, Dex], ChainRpc]:
    """The venues that have a pool in the pools file, and the RPC client to close at exit."""
    assert settings.wallet_private_key is not None  # the settings' rules refuse a start without it
    wallet = load_keypair(settings.wallet_private_key)
    book = load_pool_book(settings.pools_path)
    rpc = ChainRpc(
        settings.devnet_rpc_url,
        timeout_s=settings.solana_rpc_timeout_ms / 1000,
        commitment=settings.solana_commitment,
    )
    policy = OnChainPolicy(
        priority_fee_cap=settings.solana_priority_fee_cap,
        priority_fee_floor=settings.solana_priority_fee_floor,
        compute_unit_headroom=settings.solana_compute_unit_headroom,
        confirm_timeout_s=settings.solana_confirm_timeout_ms / 1000,
        poll_interval_s=settings.solana_poll_interval_ms / 1000,
        rebroadcast_interval_s=settings.solana_rebroadcast_interval_ms / 1000,
        explorer_tx_url=settings.solana_explorer_tx_url,
        max_slot_lag=settings.solana_max_slot_lag,
        commitment=settings.solana_commitment,
    )
    venues = {p.venue for p in book.pools}
    dexes: dict[str, Dex] = {
        name: OnChainDex(model, rpc, wallet, book, policy) for name, model in MODELS.items() if name in venues
    }
    return dexes, rpc

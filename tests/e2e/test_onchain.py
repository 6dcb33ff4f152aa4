"""The real engine processes trading on chain (USE_REAL_DEVNET=true) against the local chain.

A local chain (LiteSVM, the two pool programs emulated, adapters/localnet) runs in this
test process on 127.0.0.1, with the genesis pools and a funded wallet; the engine is
started as it would be against devnet, with only its RPC URL, wallet and pools file.
Faults are switched on in the chain itself: a lost transaction, held landings, a
front-running trade, an RPC outage.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from adapters.localnet.chain import LocalChain
from adapters.localnet.genesis import GenesisResult, create_genesis, pool_programs, swap_as_house
from adapters.localnet.rpc_server import LocalnetServer
from adapters.solana.programs import WSOL_MINT, associated_token_address
from adapters.solana.token_layouts import decode_token_account
from tests.conftest import delete_prefix, fresh_database
from tests.e2e.engine import Engine, free_port

pytestmark = pytest.mark.e2e

LAMPORTS = 10**9
USDC_UNITS = 10**6


class Localnet:
    def __init__(self, server: LocalnetServer, wallet: Keypair, genesis: GenesisResult, pools: Path) -> None:
        self.server = server
        self.wallet = wallet
        self.genesis = genesis
        self.pools = pools

    def call(self, fn: Callable[[LocalChain], Any]) -> Any:
        return self.server.call(fn)

    def lamports(self) -> int:
        return int(self.call(lambda c: c.get_balance(self.wallet.pubkey())) or 0)

    def token(self, symbol: str) -> int:
        mint = self.genesis.mints[symbol]
        address = associated_token_address(self.wallet.pubkey(), mint)
        account = self.call(lambda c: c.get_account(address))
        return decode_token_account(bytes(account.data)).amount if account is not None else 0

    def landed(self) -> list[str]:
        return [str(s) for s in self.call(lambda c: c.landed_signatures(self.wallet.pubkey()))]

    def exists(self, address: Pubkey) -> bool:
        return self.call(lambda c: c.get_account(address)) is not None


@pytest.fixture(scope="module")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    wallet = Keypair()
    pools = tmp_path_factory.mktemp("localnet") / "pools.json"
    # Slots of 50 ms: a blockhash lives 150 slots, 7.5 s.
    with LocalnetServer(LocalChain(emulated_programs=pool_programs()), slot_ms=50) as server:
        genesis = server.call(lambda chain: create_genesis(chain, wallet.pubkey(), pools_file=pools))
        yield Localnet(server, wallet, genesis, pools)


@pytest.fixture(scope="module")
def chain_database(server_urls: tuple[str, str]) -> Iterator[str]:
    """A database of its own: this engine re-drives stuck orders, and must see only its own."""
    with fresh_database(server_urls[0]) as url:
        yield url


@pytest.fixture(scope="module")
def chain_engine(chain_database: str, start_engine: Callable[..., Engine], localnet: Localnet) -> Engine:
    return start_engine(
        chain_database,
        USE_REAL_DEVNET="true",
        DEVNET_RPC_URL=localnet.server.url,
        WALLET_PRIVATE_KEY=str(localnet.wallet),
        SOLANA_POOLS_FILE=str(localnet.pools),
        SOLANA_CONFIRM_TIMEOUT_MS="2000",
        SOLANA_POLL_INTERVAL_MS="50",
        SOLANA_REBROADCAST_INTERVAL_MS="300",
        SOLANA_RPC_TIMEOUT_MS="2000",
        WORKER_HEARTBEAT_TIMEOUT_MS="5000",
        STUCK_AFTER_S="3",
        STUCK_CHECK_INTERVAL_S="1",
        LIMIT_RECHECK_INTERVAL_MS="200",
        QUOTE_TIMEOUT_MS="3000",
        BACKOFF_BASE_MS="400",
    )


@pytest.fixture(autouse=True)
def no_faults(localnet: Localnet) -> Iterator[None]:
    yield
    localnet.call(lambda c: c.reset_faults())


def events(engine: Engine, order_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{engine.base_url}/api/orders/{order_id}/events", timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def of_type(all_events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e["data"] for e in all_events if e["type"] == name]


def test_a_sol_to_usdc_market_order_wraps_swaps_and_pays_exactly_the_quote(
    chain_engine: Engine, localnet: Localnet
) -> None:
    sol_before, usdc_before = localnet.lamports(), localnet.token("USDC")

    order_id = chain_engine.submit(amount="1.5", slippageTolerance="0.01")
    order = chain_engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=30)

    assert order["status"] == "confirmed", order
    log = events(chain_engine, order_id)
    [routing] = of_type(log, "OrderRouting")
    [building] = of_type(log, "OrderBuilding")
    [confirmed] = of_type(log, "OrderConfirmed")
    chosen = next(q for q in routing["quotes"] if q["dex"] == routing["chosen_dex"])
    assert {q["dex"] for q in routing["quotes"]} == {"raydium", "meteora"}
    assert all(q["pool"] and q["slot"] is not None and q["price_impact"] for q in routing["quotes"])
    assert building["actions"] == ["wrap_sol", f"swap:{routing['chosen_dex']}"]
    assert building["compute_units"] > 0 and building["priority_fee"] is not None
    # Nobody else traded in between: the pool paid exactly what its quote said.
    assert Decimal(confirmed["amount_out"]) == Decimal(chosen["expected_out"])
    assert Decimal(confirmed["amount_in"]) == Decimal("1.5")
    assert (
        confirmed["explorer_url"] == f"https://explorer.solana.com/tx/{confirmed['tx_hash']}?cluster=devnet"
    )
    fee = int(Decimal(confirmed["fee_paid"]) * LAMPORTS)
    assert localnet.lamports() == sol_before - int(Decimal("1.5") * LAMPORTS) - fee
    assert localnet.token("USDC") == usdc_before + int(Decimal(confirmed["amount_out"]) * USDC_UNITS)
    assert not localnet.exists(associated_token_address(localnet.wallet.pubkey(), WSOL_MINT))  # unwrapped
    assert confirmed["tx_hash"] in localnet.landed()


def test_a_usdc_to_sol_limit_order_waits_for_its_price_and_fills(
    chain_engine: Engine, localnet: Localnet
) -> None:
    sol_before = localnet.lamports()
    # SOL is ~150 USDC: a limit of 0.0069 SOL per USDC (SOL at ~145) is not met yet.
    order_id = chain_engine.submit(
        orderType="limit", tokenIn="USDC", tokenOut="SOL", amount="300", limitPrice="0.0069"
    )
    waiting = chain_engine.wait_for_status(order_id, {"waiting", "confirmed", "failed"}, timeout=20)
    assert waiting["status"] == "waiting", waiting

    # A large sale of SOL on both pools makes SOL cheaper: the limit is met.
    for venue in ("raydium", "meteora"):
        pool = localnet.genesis.pool(venue, "SOL/USDC")
        reserve = 10_000 if venue == "raydium" else 6_000
        localnet.call(lambda c, p=pool, r=reserve: swap_as_house(c, p, WSOL_MINT, r * LAMPORTS // 20))

    order = chain_engine.wait_for_status(order_id, {"confirmed", "failed", "expired"}, timeout=30)
    assert order["status"] == "confirmed", order
    [confirmed] = of_type(events(chain_engine, order_id), "OrderConfirmed")
    assert Decimal(confirmed["executed_price"]) >= Decimal("0.0069")
    received = int(Decimal(confirmed["amount_out"]) * LAMPORTS)
    fee = int(Decimal(confirmed["fee_paid"]) * LAMPORTS)
    assert localnet.lamports() == sol_before + received - fee


def test_a_swap_front_run_past_its_slippage_fails_on_chain_and_is_not_retried(
    chain_engine: Engine, localnet: Localnet
) -> None:
    usdc_before = localnet.token("USDC")
    # Just before the order's swap lands, a trader dumps SOL on whichever pool it uses.
    for venue in ("raydium", "meteora"):
        pool = localnet.genesis.pool(venue, "SOL/USDC")
        localnet.call(
            lambda c, p=pool: c.faults.front_run(
                p.address, lambda: swap_as_house(c, p, WSOL_MINT, 300 * LAMPORTS)
            )
        )

    order_id = chain_engine.submit(amount="2", slippageTolerance="0.001")
    order = chain_engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=30)

    assert order["status"] == "failed", order
    log = events(chain_engine, order_id)
    [failed] = of_type(log, "OrderFailed")
    assert failed["step"] == "confirm" and "ExceededSlippage" in failed["error"], failed
    assert of_type(log, "RetryScheduled") == []
    [submitted] = of_type(log, "OrderSubmitted")
    assert submitted["tx_hash"] in localnet.landed()  # it landed, failed, and paid its fee
    assert localnet.token("USDC") == usdc_before


def test_a_transaction_lost_until_its_blockhash_expires_is_signed_again_and_lands_once(
    chain_engine: Engine, localnet: Localnet
) -> None:
    localnet.call(lambda c: c.faults.lose_next(1))
    order_id = chain_engine.submit(amount="0.5")
    chain_engine.wait_for_status(order_id, {"submitted", "confirmed", "failed"}, timeout=20)
    localnet.call(lambda c: c.advance_slots(200))  # the lost transaction's blockhash runs out

    order = chain_engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=30)

    assert order["status"] == "confirmed", order
    log = events(chain_engine, order_id)
    [requested] = of_type(log, "SwapRequested")
    [reissued] = of_type(log, "SwapReissued")
    [confirmed] = of_type(log, "OrderConfirmed")
    assert reissued["previous_signature"] == requested["signature"]
    assert confirmed["tx_hash"] == reissued["signature"] != requested["signature"]
    landed = localnet.landed()
    assert reissued["signature"] in landed and requested["signature"] not in landed


def test_a_worker_killed_after_sending_and_before_the_confirmation_lands_the_swap_once(
    chain_engine: Engine, localnet: Localnet
) -> None:
    usdc_before = localnet.token("USDC")
    localnet.call(lambda c: c.hold_landing(3000))  # sent transactions land 3 s later
    order_id = chain_engine.submit(amount="0.7")
    chain_engine.wait_for_status(order_id, {"submitted", "confirmed", "failed"}, timeout=20)
    victim = chain_engine.worker_process()
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)

    order = chain_engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=60)

    assert order["status"] == "confirmed", order
    log = events(chain_engine, order_id)
    [requested] = of_type(log, "SwapRequested")
    assert of_type(log, "SwapReissued") == []
    [confirmed] = of_type(log, "OrderConfirmed")
    assert confirmed["tx_hash"] == requested["signature"]
    assert localnet.landed().count(requested["signature"]) == 1
    assert localnet.token("USDC") == usdc_before + int(Decimal(confirmed["amount_out"]) * USDC_UNITS)
    assert chain_engine.worker_process().pid != victim.pid


def test_an_rpc_outage_while_routing_is_retried_and_the_order_confirms(
    chain_engine: Engine, localnet: Localnet
) -> None:
    localnet.call(lambda c: c.outage(800))  # the second retry, 1.2 s or more later, gets through
    order_id = chain_engine.submit(amount="0.25")

    order = chain_engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=30)

    assert order["status"] == "confirmed", events(chain_engine, order_id)
    retries = of_type(events(chain_engine, order_id), "RetryScheduled")
    assert retries and retries[0]["step"] == "route"
    assert "no DEX answered" in retries[0]["error"] and "Solana RPC" in retries[0]["error"]


def test_a_wallet_without_the_funds_fails_the_order_before_anything_is_sent(
    chain_engine: Engine, localnet: Localnet
) -> None:
    landed_before = localnet.landed()

    order_id = chain_engine.submit(amount="5000")  # the wallet holds ~100 SOL

    order = chain_engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=30)
    assert order["status"] == "failed", order
    log = events(chain_engine, order_id)
    [failed] = of_type(log, "OrderFailed")
    assert failed["step"] == "build" and "insufficient funds" in failed["error"]
    assert of_type(log, "SwapRequested") == []
    assert localnet.landed() == landed_before


def test_run_with_localnet_trades_offline_on_a_chain_of_its_own(
    own_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """`orderengine run --localnet`: the chain, its wallet and pools file, and the engine on them."""
    port = free_port()
    engine = Engine(
        own_database_url, redis_url, args=("--localnet", "--localnet-port", str(port)), DATA_DIR=str(tmp_path)
    ).start()
    try:
        order_id = engine.submit(amount="1", userId="demo")
        order = engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=30)
        assert order["status"] == "confirmed", order
        [confirmed] = of_type(events(engine, order_id), "OrderConfirmed")
        assert confirmed["slot"] is not None and Decimal(confirmed["amount_in"]) == Decimal(1)
        assert (tmp_path / "localnet" / "pools.json").exists()
        wallet = (tmp_path / "localnet" / "wallet.json").read_text()
        assert wallet not in engine.log()  # the generated key is never printed
        landed = httpx.post(
            f"http://127.0.0.1:{port}",
            json={"jsonrpc": "2.0", "id": 1, "method": "localnet_landedSignatures"},
        ).json()["result"]
        assert confirmed["tx_hash"] in landed
    finally:
        engine.stop()
        delete_prefix(redis_url, engine.prefix)

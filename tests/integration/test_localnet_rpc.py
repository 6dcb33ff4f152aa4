"""solana-py's AsyncClient against the local chain's JSON-RPC server on 127.0.0.1.

Marked `integration` because it starts a real HTTP server (a thread with uvicorn); it
needs no Postgres or Redis (it requests none of their fixtures, which are not autouse).
One server serves the module; each test uses keypairs of its own and resets faults.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.rpc.requests import GetBalance, GetSlot, batch_to_json
from solders.rpc.responses import GetBalanceResp, GetSlotResp, batch_from_json
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionConfirmationStatus,
    TransactionErrorInstructionError,
)
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    sync_native,
)
from spl.token.models import SyncNativeParams

from adapters.localnet.ata import AssociatedTokenAccountProgram
from adapters.localnet.chain import LocalChain
from adapters.localnet.rpc_server import LocalnetServer
from adapters.localnet.token_accounts import NATIVE_MINT, TOKEN_PROGRAM_ID, read_token_account_data

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SOL = 10**9


@pytest.fixture(scope="module")
def server() -> Iterator[LocalnetServer]:
    chain = LocalChain(emulated_programs=[AssociatedTokenAccountProgram()])
    with LocalnetServer(chain, port=0, slot_ms=100) as running:
        yield running


@pytest.fixture
def url(server: LocalnetServer) -> Iterator[str]:
    yield server.url
    server.call(lambda chain: chain.reset_faults())


async def raw_call(url: str, method: str, params: list[Any] | None = None) -> Any:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url, json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params or []}
        )
    response.raise_for_status()
    return response.json()


async def funded(client: AsyncClient, lamports: int = 10 * SOL) -> Keypair:
    keypair = Keypair()
    signature = (await client.request_airdrop(keypair.pubkey(), lamports)).value
    await client.confirm_transaction(signature)
    return keypair


async def signed(client: AsyncClient, payer: Keypair, ixs: list[Instruction]) -> VersionedTransaction:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    return VersionedTransaction(MessageV0.try_compile(payer.pubkey(), ixs, [], blockhash), [payer])


def wrap_ixs(owner: Pubkey, lamports: int) -> list[Instruction]:
    ata = get_associated_token_address(owner, NATIVE_MINT)
    return [
        set_compute_unit_limit(100_000),
        set_compute_unit_price(2_000),
        create_idempotent_associated_token_account(owner, owner, NATIVE_MINT),
        transfer(TransferParams(from_pubkey=owner, to_pubkey=ata, lamports=lamports)),
        sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=ata)),
    ]


def overdraw_ix(owner: Pubkey) -> Instruction:
    """An SPL Token transfer of more than the owner's wSOL account holds: Custom(1)."""
    ata = get_associated_token_address(owner, NATIVE_MINT)
    return Instruction(
        TOKEN_PROGRAM_ID,
        bytes([3]) + struct.pack("<Q", 10 * SOL),
        [AccountMeta(ata, False, True), AccountMeta(ata, False, True), AccountMeta(owner, True, False)],
    )


async def test_an_airdrop_lands_and_shows_in_the_balance(url: str) -> None:
    async with AsyncClient(url) as client:
        keypair = await funded(client, 3 * SOL)
        assert (await client.get_balance(keypair.pubkey())).value == 3 * SOL


async def test_the_latest_blockhash_is_valid_for_150_blocks_past_the_height(url: str) -> None:
    async with AsyncClient(url) as client:
        height = (await client.get_block_height()).value
        latest = (await client.get_latest_blockhash()).value
        assert height <= latest.last_valid_block_height - 150 <= height + 2
        advanced = await raw_call(url, "localnet_advanceSlots", [5])
        assert (await client.get_block_height()).value >= advanced["result"] >= height + 5


async def test_the_slot_advances_on_its_own_every_slot_ms(url: str) -> None:
    async with AsyncClient(url) as client:
        first = (await client.get_slot()).value
        await anyio.sleep(0.45)  # the module's server ticks every 100 ms
        assert (await client.get_slot()).value >= first + 2


async def test_a_wrap_transaction_is_confirmed_and_read_back_with_fee_units_and_token_balances(
    url: str,
) -> None:
    async with AsyncClient(url) as client:
        owner = await funded(client)
        tx = await signed(client, owner, wrap_ixs(owner.pubkey(), SOL // 4))
        signature = (await client.send_transaction(tx)).value
        await client.confirm_transaction(signature)
        status = (await client.get_signature_statuses([signature])).value[0]
        assert status is not None and status.err is None
        assert status.confirmation_status == TransactionConfirmationStatus.Finalized
        got = (await client.get_transaction(signature, max_supported_transaction_version=0)).value
        assert got is not None
        meta = got.transaction.meta
        assert meta is not None and meta.err is None
        assert meta.fee == 5_000 + 200  # 100,000 units at 2,000 micro-lamports
        assert meta.compute_units_consumed is not None and 10_000 < meta.compute_units_consumed < 100_000
        assert meta.pre_token_balances == []
        post = meta.post_token_balances
        assert post is not None and len(post) == 1
        assert post[0].ui_token_amount.amount == str(SOL // 4) and post[0].ui_token_amount.decimals == 9
        assert meta.log_messages is not None and any(
            "Program log: CreateIdempotent" in m for m in meta.log_messages
        )
        balance = await client.get_token_account_balance(
            get_associated_token_address(owner.pubkey(), NATIVE_MINT)
        )
        assert balance.value.ui_amount_string == "0.25"


async def test_a_preflight_failure_raises_rpc_exception_with_the_instruction_error(url: str) -> None:
    async with AsyncClient(url) as client:
        owner = await funded(client)
        tx = await signed(client, owner, [*wrap_ixs(owner.pubkey(), SOL // 4), overdraw_ix(owner.pubkey())])
        with pytest.raises(RPCException) as raised:
            await client.send_transaction(tx)
        failure = raised.value.args[0]
        assert isinstance(failure, SendTransactionPreflightFailureMessage)
        assert failure.data.err == TransactionErrorInstructionError(5, InstructionErrorCustom(1))
        assert failure.data.logs and "custom program error: 0x1" in failure.data.logs[-1]
        assert (await client.get_signature_statuses([tx.signatures[0]])).value == [None]


async def test_a_skipped_preflight_returns_the_signature_and_the_failure_lands_with_its_fee(url: str) -> None:
    async with AsyncClient(url) as client:
        owner = await funded(client)
        tx = await signed(client, owner, [*wrap_ixs(owner.pubkey(), SOL // 4), overdraw_ix(owner.pubkey())])
        signature = (await client.send_transaction(tx, TxOpts(skip_preflight=True))).value
        status = (await client.get_signature_statuses([signature])).value[0]
        assert status is not None and status.err == TransactionErrorInstructionError(
            5, InstructionErrorCustom(1)
        )
        assert (await client.get_balance(owner.pubkey())).value == 10 * SOL - 5_200


async def test_multiple_accounts_come_back_in_order_with_their_data(url: str) -> None:
    async with AsyncClient(url) as client:
        owner = await funded(client)
        tx = await signed(client, owner, wrap_ixs(owner.pubkey(), 1_000_000))
        await client.confirm_transaction((await client.send_transaction(tx)).value)
        ata = get_associated_token_address(owner.pubkey(), NATIVE_MINT)
        accounts = (await client.get_multiple_accounts([ata, Pubkey.new_unique(), owner.pubkey()])).value
        assert accounts[1] is None and accounts[2] is not None and accounts[2].data == b""
        assert accounts[0] is not None and accounts[0].owner == TOKEN_PROGRAM_ID
        state = read_token_account_data(accounts[0].data)
        assert state is not None and (state.owner, state.amount) == (owner.pubkey(), 1_000_000)


async def test_a_bad_signature_is_refused_with_signature_verification_failure(url: str) -> None:
    async with AsyncClient(url) as client:
        owner = await funded(client)
        good = await signed(
            client,
            owner,
            [
                transfer(
                    TransferParams(from_pubkey=owner.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL)
                )
            ],
        )
        forged = VersionedTransaction.populate(good.message, [Signature.new_unique()])
        with pytest.raises(RPCException) as raised:
            await client.send_transaction(forged)
        assert "SignatureVerificationFailure" in repr(raised.value.args[0])


async def test_an_outage_makes_the_client_raise_and_admin_calls_still_pass(url: str) -> None:
    async with AsyncClient(url) as client:
        await raw_call(url, "localnet_outage", [60_000])
        try:
            with pytest.raises(SolanaRpcException):
                await client.get_slot()
        except BaseException as error:  # a PanicException would be a BaseException only
            pytest.fail(f"the client raised {type(error).__name__}, not SolanaRpcException")
        assert (await raw_call(url, "localnet_reset_faults"))["result"] == "ok"
        assert (await client.get_slot()).value >= 0


async def test_a_dropped_transaction_is_accepted_and_never_lands(url: str) -> None:
    async with AsyncClient(url) as client:
        owner = await funded(client)
        await raw_call(url, "localnet_dropNext", [1])
        tx = await signed(
            client,
            owner,
            [
                transfer(
                    TransferParams(from_pubkey=owner.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL)
                )
            ],
        )
        signature = (await client.send_transaction(tx)).value
        assert signature == tx.signatures[0]
        assert (await client.get_signature_statuses([signature])).value == [None]
        landed = await raw_call(url, "localnet_landedSignatures", [str(owner.pubkey())])
        assert landed["result"] == []


async def test_recent_prioritization_fees_report_the_price_paid_for_a_written_account(url: str) -> None:
    async with AsyncClient(url) as client:
        owner = await funded(client)
        tx = await signed(client, owner, wrap_ixs(owner.pubkey(), 1_000_000))
        await client.confirm_transaction((await client.send_transaction(tx)).value)
        ata = get_associated_token_address(owner.pubkey(), NATIVE_MINT)
        fees = (await client.get_recent_prioritization_fees([ata])).value
        assert 0 < len(fees) <= 150 and max(fee.prioritization_fee for fee in fees) == 2_000


async def test_a_batch_request_is_answered_in_order(url: str) -> None:
    async with AsyncClient(url) as client:
        keypair = await funded(client, 2 * SOL)
    async with httpx.AsyncClient() as http:
        body = batch_to_json([GetSlot(id=1), GetBalance(keypair.pubkey(), id=2)])
        response = await http.post(url, content=body, headers={"Content-Type": "application/json"})
    slot, balance = batch_from_json(response.text, [GetSlotResp, GetBalanceResp])
    assert isinstance(slot, GetSlotResp) and slot.value >= 0
    assert isinstance(balance, GetBalanceResp) and balance.value == 2 * SOL


async def test_malformed_json_and_unknown_methods_get_well_formed_errors(url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["error"]["code"] == -32700
    assert (await raw_call(url, "getNothing"))["error"]["code"] == -32601

"""The Solana JSON-RPC calls the venues make, through solana-py's `AsyncClient`.

Every failure to get an answer (connection refused, timeout, an HTTP error, a reply
solders cannot parse, a node that says it is unhealthy) becomes a `TransientError`,
so the engine's backoff retries it. solders raises `PanicException`, a BaseException,
on some malformed error replies: it is caught here, at the adapter's edge, and nowhere
else. A transaction the node refuses at preflight is a `PreflightFailed` carrying the
chain's error, which the venue decodes (a program error is final, an expired blockhash
is not).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException, RPCNoResultException
from solana.rpc.models import TxOpts
from solders.account import Account
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    EncodedConfirmedTransactionWithStatusMeta,
    TransactionErrorType,
    TransactionStatus,
)

from domain.errors import TransientError

log = logging.getLogger("orderengine.solana")

T = TypeVar("T")


class PreflightFailed(Exception):
    """The node simulated the transaction and it failed: `err` is the chain's error."""

    def __init__(self, err: TransactionErrorType | None, logs: Sequence[str], message: str) -> None:
        super().__init__(message)
        self.err = err
        self.logs = list(logs)


class Simulation:
    """What a simulation said: the error (None if it would succeed), units used, logs."""

    def __init__(self, err: TransactionErrorType | None, units: int, logs: Sequence[str]) -> None:
        self.err = err
        self.units = units
        self.logs = list(logs)


class ChainRpc:
    def __init__(self, url: str, *, timeout_s: float = 10.0, commitment: str = "confirmed") -> None:
        self.url = url
        self.host = urlsplit(url).netloc or url
        self.commitment = Commitment(commitment)
        self._client = AsyncClient(url, commitment=self.commitment, timeout=timeout_s)
        self._timeout_s = timeout_s

    async def close(self) -> None:
        await self._client.close()

    async def accounts(self, keys: Sequence[Pubkey]) -> tuple[int, list[Account | None]]:
        """The accounts in one getMultipleAccounts, and the slot they were read at."""
        resp = await self._call("getMultipleAccounts", self._client.get_multiple_accounts(list(keys)))
        return resp.context.slot, [_account(a) for a in resp.value]

    async def latest_blockhash(self) -> tuple[Hash, int]:
        resp = await self._call("getLatestBlockhash", self._client.get_latest_blockhash())
        return resp.value.blockhash, resp.value.last_valid_block_height

    async def block_height(self) -> int:
        resp = await self._call("getBlockHeight", self._client.get_block_height())
        return int(resp.value)

    async def balance(self, key: Pubkey) -> int:
        resp = await self._call("getBalance", self._client.get_balance(key))
        return int(resp.value)

    async def simulate(self, tx: VersionedTransaction) -> Simulation:
        resp = await self._call(
            "simulateTransaction",
            self._client.simulate_transaction(tx, sig_verify=False, replace_recent_blockhash=True),
        )
        value = resp.value
        return Simulation(value.err, int(value.units_consumed or 0), value.logs or [])

    async def send(self, tx: VersionedTransaction, *, preflight: bool) -> None:
        """Send the signed transaction; PreflightFailed if the node's simulation refuses it."""
        opts = TxOpts(
            skip_confirmation=True, skip_preflight=not preflight, preflight_commitment=self.commitment
        )
        await self._call("sendTransaction", self._client.send_raw_transaction(bytes(tx), opts=opts))

    async def status(self, signature: Signature) -> TransactionStatus | None:
        resp = await self._call(
            "getSignatureStatuses",
            self._client.get_signature_statuses([signature], search_transaction_history=True),
        )
        return resp.value[0]

    async def transaction(self, signature: Signature) -> EncodedConfirmedTransactionWithStatusMeta | None:
        resp = await self._call(
            "getTransaction",
            self._client.get_transaction(
                signature, encoding="json", commitment=self.commitment, max_supported_transaction_version=0
            ),
        )
        return resp.value

    async def priority_fees(self, accounts: Sequence[Pubkey]) -> list[int]:
        """Recent prioritization fees (micro-lamports per unit) paid by transactions that
        wrote these accounts, one per recent slot."""
        resp = await self._call(
            "getRecentPrioritizationFees", self._client.get_recent_prioritization_fees(list(accounts))
        )
        return [int(f.prioritization_fee) for f in resp.value]

    async def _call(self, method: str, request: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(request, self._timeout_s)
        except RPCException as exc:
            raise self._refused(method, exc) from None
        except (SolanaRpcException, httpx.HTTPError, OSError, TimeoutError, RPCNoResultException) as exc:
            raise TransientError(f"Solana RPC {self.host}: {method} failed: {_describe(exc)}") from None
        except BaseException as exc:
            if type(exc).__name__ != "PanicException":
                raise  # cancellation, interrupts and bugs pass through untouched
            raise TransientError(f"Solana RPC {self.host}: {method} answered something unreadable") from None

    def _refused(self, method: str, exc: RPCException) -> Exception:
        error: Any = exc.args[0] if exc.args else None
        if isinstance(error, SendTransactionPreflightFailureMessage):
            data = error.data
            return PreflightFailed(data.err, data.logs or [], error.message)
        message = getattr(error, "message", None) or str(error)
        return TransientError(f"Solana RPC {self.host}: {method} refused: {message}")


def _account(account: Any) -> Account | None:
    if account is None:
        return None
    if isinstance(account, Account):
        return account
    # jsonParsed replies are never asked for; base64 data arrives as bytes already.
    data = account.data if isinstance(account.data, bytes) else base64.b64decode(account.data[0])
    return Account(account.lamports, data, account.owner, account.executable, account.rent_epoch)


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if isinstance(exc, SolanaRpcException) and cause is not None:
        text = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    return text[:300]

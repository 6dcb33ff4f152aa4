"""The JSON-RPC methods of the local chain: params in, a result JSON value out.

Errors are raised as `RpcError` with codes from the set solana-py handles safely
(-32600, -32601, -32602, -32603, -32700, -32002 always with simulation data, -32003):
any other code parses to a bare int that the client later crashes on, and -32002
without data makes solders panic (`PanicException`, a BaseException).

Admin methods (not Solana's; for tests and demos):
- `localnet_dropNext [n]`: the next n sent transactions are accepted and never land.
- `localnet_loseNext [n]`: the next n sent transactions, and every rebroadcast of them,
  are accepted and never land (their blockhash expires unlanded).
- `localnet_holdLanding [ms]`: each transaction sent from now on lands on the first slot
  at least `ms` after its send (0 switches it off).
- `localnet_outage [ms]`: HTTP 503 to every non-admin request for `ms`.
- `localnet_advanceSlots [n]`: advance n slots at once (expires blockhashes); the new slot.
- `localnet_resetFaults []` (also `localnet_reset_faults`): all faults off, held
  transactions land on the next slot.
- `localnet_landedSignatures [signer?]`: landed signatures (successes and failures) in
  landing order, only those `signer` signed if given.
- `localnet_setUnixTimestamp [ts|null]`: pin the clock's unix_timestamp, or follow the
  wall clock again.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from solders.message import Message, MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.rpc.responses import (
    GetFeeForMessageResp,
    GetLatestBlockhashResp,
    GetRecentPrioritizationFeesResp,
    GetSignatureStatusesResp,
    GetVersionResp,
    RpcBlockhash,
    RpcPrioritizationFee,
    RpcResponseContext,
    RpcVersionInfo,
)
from solders.signature import Signature
from solders.transaction_status import TransactionConfirmationStatus, TransactionStatus

from adapters.localnet.chain import (
    AirdropFailed,
    InvalidTransaction,
    LocalChain,
    PreflightFailure,
    SignatureVerificationFailed,
)
from adapters.localnet.rpc_encoding import (
    TransactionDecodeError,
    account_json,
    decode_transaction,
    error_text,
    simulation_result,
    transaction_json,
    ui_token_amount_json,
)
from adapters.localnet.token_accounts import read_mint, read_token_account

logger = logging.getLogger(__name__)

API_VERSION = "2.2.0"
FEATURE_SET = 3_294_202_862
INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR, PARSE_ERROR = (
    -32600,
    -32601,
    -32602,
    -32603,
    -32700,
)
PREFLIGHT_FAILURE, SIGNATURE_VERIFICATION_FAILURE = -32002, -32003
MAX_MULTIPLE_ACCOUNTS, MAX_SIGNATURE_STATUSES, MAX_FEE_ADDRESSES = 100, 256, 128


class RpcError(Exception):
    """A JSON-RPC error object to answer with."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"Invalid params: {message}")


Handler = Callable[[list[Any]], Any]


class RpcMethods:
    """Dispatches method calls to a `LocalChain` (call from the chain's one thread)."""

    def __init__(self, chain: LocalChain) -> None:
        self._chain = chain
        self._handlers: dict[str, Handler] = {
            "getLatestBlockhash": self._get_latest_blockhash,
            "getBlockHeight": lambda _: self._chain.block_height,
            "getSlot": lambda _: self._chain.slot,
            "getBalance": self._get_balance,
            "getAccountInfo": self._get_account_info,
            "getMultipleAccounts": self._get_multiple_accounts,
            "getTokenAccountBalance": self._get_token_account_balance,
            "getRecentPrioritizationFees": self._get_recent_prioritization_fees,
            "simulateTransaction": self._simulate_transaction,
            "sendTransaction": self._send_transaction,
            "getSignatureStatuses": self._get_signature_statuses,
            "getTransaction": self._get_transaction,
            "requestAirdrop": self._request_airdrop,
            "getHealth": lambda _: "ok",
            "getVersion": lambda _: _result(GetVersionResp(RpcVersionInfo(API_VERSION, FEATURE_SET))),
            "getGenesisHash": lambda _: str(self._chain.genesis_hash),
            "getMinimumBalanceForRentExemption": self._get_minimum_balance,
            "getFeeForMessage": self._get_fee_for_message,
            "localnet_dropNext": self._drop_next,
            "localnet_loseNext": self._lose_next,
            "localnet_holdLanding": self._hold_landing,
            "localnet_outage": self._outage,
            "localnet_advanceSlots": self._advance_slots,
            "localnet_resetFaults": self._reset_faults,
            "localnet_reset_faults": self._reset_faults,
            "localnet_landedSignatures": self._landed_signatures,
            "localnet_setUnixTimestamp": self._set_unix_timestamp,
        }

    def call(self, method: str, params: Any) -> Any:
        """The result of `method`, or RpcError."""
        handler = self._handlers.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise invalid_params("expected an array of parameters")
        try:
            return handler(params)
        except RpcError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as error:
            raise invalid_params(str(error)) from None
        except Exception:
            logger.exception("localnet RPC %s failed", method)
            raise RpcError(INTERNAL_ERROR, "Internal error") from None

    # -- reads -----------------------------------------------------------------------
    def _context(self) -> RpcResponseContext:
        return RpcResponseContext(self._chain.slot, API_VERSION)

    def _context_json(self) -> dict[str, Any]:
        return {"slot": self._chain.slot, "apiVersion": API_VERSION}

    def _get_latest_blockhash(self, _: list[Any]) -> Any:
        blockhash, last_valid = self._chain.latest_blockhash
        return _result(GetLatestBlockhashResp(RpcBlockhash(blockhash, last_valid), self._context()))

    def _get_balance(self, params: list[Any]) -> Any:
        return {"context": self._context_json(), "value": self._chain.get_balance(_pubkey(params, 0))}

    def _get_account_info(self, params: list[Any]) -> Any:
        encoding, data_slice = _account_encoding(_config(params, 1))
        account = self._chain.get_account(_pubkey(params, 0))
        return {"context": self._context_json(), "value": account_json(account, encoding, data_slice)}

    def _get_multiple_accounts(self, params: list[Any]) -> Any:
        keys = _param(params, 0)
        if not isinstance(keys, list) or len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise invalid_params(f"expected at most {MAX_MULTIPLE_ACCOUNTS} addresses")
        encoding, data_slice = _account_encoding(_config(params, 1))
        values = [account_json(self._chain.get_account(_parse_pubkey(k)), encoding, data_slice) for k in keys]
        return {"context": self._context_json(), "value": values}

    def _get_token_account_balance(self, params: list[Any]) -> Any:
        account = self._chain.get_account(_pubkey(params, 0))
        if account is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: could not find account")
        state = read_token_account(account)
        mint = read_mint(self._chain.get_account(state.mint)) if state is not None else None
        if state is None or mint is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token account")
        return {"context": self._context_json(), "value": ui_token_amount_json(state.amount, mint.decimals)}

    def _get_recent_prioritization_fees(self, params: list[Any]) -> Any:
        addresses = params[0] if params else []
        if not isinstance(addresses, list) or len(addresses) > MAX_FEE_ADDRESSES:
            raise invalid_params(f"expected at most {MAX_FEE_ADDRESSES} addresses")
        fees = self._chain.recent_prioritization_fees([_parse_pubkey(a) for a in addresses])
        return _result(GetRecentPrioritizationFeesResp([RpcPrioritizationFee(s, f) for s, f in fees]))

    def _get_signature_statuses(self, params: list[Any]) -> Any:
        signatures = _param(params, 0)
        if not isinstance(signatures, list) or len(signatures) > MAX_SIGNATURE_STATUSES:
            raise invalid_params(f"expected at most {MAX_SIGNATURE_STATUSES} signatures")
        statuses: list[TransactionStatus | None] = []
        for text in signatures:
            record = self._chain.transaction(_parse_signature(text))
            statuses.append(
                None
                if record is None
                else TransactionStatus(
                    record.slot,
                    None,
                    status=record.result.err,
                    err=record.result.err,
                    confirmation_status=TransactionConfirmationStatus.Finalized,
                )
            )
        return _result(GetSignatureStatusesResp(statuses, self._context()))

    def _get_transaction(self, params: list[Any]) -> Any:
        record = self._chain.transaction(_parse_signature(_param(params, 0)))
        encoding = _config(params, 1).get("encoding") or "json"
        if encoding not in ("json", "jsonParsed", "base64", "base58"):
            raise invalid_params(f"unsupported encoding {encoding}")
        return None if record is None else transaction_json(record, encoding)

    def _get_minimum_balance(self, params: list[Any]) -> Any:
        space = _param(params, 0)
        if not isinstance(space, int) or space < 0:
            raise invalid_params("expected a data length")
        return self._chain.minimum_balance_for_rent_exemption(space)

    def _get_fee_for_message(self, params: list[Any]) -> Any:
        try:
            message = from_bytes_versioned(base64.b64decode(_param(params, 0), validate=True))
        except Exception as error:
            raise invalid_params(f"invalid message: {error}") from None
        if not isinstance(message, Message | MessageV0):
            raise invalid_params("unsupported message version")
        return _result(GetFeeForMessageResp(self._chain.fee_for_message(message), self._context()))

    # -- transactions ----------------------------------------------------------------
    def _simulate_transaction(self, params: list[Any]) -> Any:
        config = _config(params, 1)
        sig_verify = bool(config.get("sigVerify"))
        replace = bool(config.get("replaceRecentBlockhash"))
        if sig_verify and replace:
            raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
        tx = self._decode(params, config, default="base58")
        addresses = [_parse_pubkey(a) for a in (config.get("accounts") or {}).get("addresses") or []]
        try:
            result = self._chain.simulate(
                tx, sig_verify=sig_verify, replace_recent_blockhash=replace, accounts=addresses
            )
        except SignatureVerificationFailed:
            raise RpcError(
                SIGNATURE_VERIFICATION_FAILURE, "Transaction signature verification failure"
            ) from None
        except InvalidTransaction as error:
            raise invalid_params(str(error)) from None
        accounts = [result.post_accounts.get(a) for a in addresses] if config.get("accounts") else None
        value = json.loads(simulation_result(result, accounts=accounts).to_json())
        if replace:
            blockhash, last_valid = self._chain.latest_blockhash
            value["replacementBlockhash"] = {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid}
        return {"context": self._context_json(), "value": value}

    def _send_transaction(self, params: list[Any]) -> Any:
        config = _config(params, 1)
        tx = self._decode(params, config, default="base58")
        try:
            signature = self._chain.send(tx, skip_preflight=bool(config.get("skipPreflight")))
        except SignatureVerificationFailed:
            raise RpcError(
                SIGNATURE_VERIFICATION_FAILURE, "Transaction signature verification failure"
            ) from None
        except InvalidTransaction as error:
            raise invalid_params(str(error)) from None
        except PreflightFailure as failure:
            result = failure.result
            assert result.err is not None
            message = f"Transaction simulation failed: {error_text(result.err)}"
            data = simulation_result(result, with_balances=False)
            rendered = json.loads(SendTransactionPreflightFailureMessage(message, data).to_json())
            raise RpcError(PREFLIGHT_FAILURE, rendered["message"], rendered["data"]) from None
        return str(signature)

    def _request_airdrop(self, params: list[Any]) -> Any:
        lamports = _param(params, 1)
        if not isinstance(lamports, int) or lamports <= 0:
            raise invalid_params("expected a positive number of lamports")
        try:
            return str(self._chain.airdrop(_pubkey(params, 0), lamports))
        except AirdropFailed as error:
            raise RpcError(INTERNAL_ERROR, f"airdrop request failed: {error}") from None

    def _decode(self, params: list[Any], config: dict[str, Any], *, default: str) -> Any:
        text = _param(params, 0)
        if not isinstance(text, str):
            raise invalid_params("expected an encoded transaction")
        try:
            return decode_transaction(text, config.get("encoding") or default)
        except TransactionDecodeError as error:
            raise invalid_params(str(error)) from None

    # -- admin -----------------------------------------------------------------------
    def _drop_next(self, params: list[Any]) -> Any:
        self._chain.drop_next(_int(params, 0))
        return {"dropNext": self._chain.faults.drop_remaining}

    def _lose_next(self, params: list[Any]) -> Any:
        self._chain.faults.lose_next(_int(params, 0))
        return {"loseNext": self._chain.faults.lose_remaining}

    def _hold_landing(self, params: list[Any]) -> Any:
        self._chain.hold_landing(_int(params, 0))
        return {"holdMs": self._chain.faults.hold_ms}

    def _outage(self, params: list[Any]) -> Any:
        self._chain.outage(_int(params, 0))
        return {"outageMs": _int(params, 0)}

    def _advance_slots(self, params: list[Any]) -> Any:
        self._chain.advance_slots(_int(params, 0))
        return self._chain.slot

    def _reset_faults(self, _: list[Any]) -> Any:
        self._chain.reset_faults()
        return "ok"

    def _landed_signatures(self, params: list[Any]) -> Any:
        signer = _parse_pubkey(params[0]) if params and params[0] is not None else None
        return [str(sig) for sig in self._chain.landed_signatures(signer)]

    def _set_unix_timestamp(self, params: list[Any]) -> Any:
        timestamp = params[0] if params else None
        if timestamp is not None and not isinstance(timestamp, int):
            raise invalid_params("expected a unix timestamp or null")
        self._chain.set_unix_timestamp(timestamp)
        return self._chain.clock.unix_timestamp


def _result(response: Any) -> Any:
    """The `result` of a solders response object, as JSON values."""
    return json.loads(response.to_json())["result"]


def _param(params: list[Any], index: int) -> Any:
    if index >= len(params):
        raise invalid_params(f"missing parameter {index}")
    return params[index]


def _config(params: list[Any], index: int) -> dict[str, Any]:
    if index >= len(params) or params[index] is None:
        return {}
    if not isinstance(params[index], dict):
        raise invalid_params(f"parameter {index} must be a configuration object")
    config: dict[str, Any] = params[index]
    return config


def _int(params: list[Any], index: int) -> int:
    value = _param(params, index)
    if not isinstance(value, int) or value < 0:
        raise invalid_params(f"parameter {index} must be a non-negative integer")
    return value


def _parse_pubkey(text: Any) -> Pubkey:
    if not isinstance(text, str):
        raise invalid_params("expected a base58 pubkey")
    try:
        return Pubkey.from_string(text)
    except Exception:
        raise invalid_params(f"invalid pubkey {text!r}") from None


def _pubkey(params: list[Any], index: int) -> Pubkey:
    return _parse_pubkey(_param(params, index))


def _parse_signature(text: Any) -> Signature:
    if not isinstance(text, str):
        raise invalid_params("expected a base58 signature")
    try:
        return Signature.from_string(text)
    except Exception:
        raise invalid_params(f"invalid signature {text!r}") from None


def _account_encoding(config: dict[str, Any]) -> tuple[str, dict[str, int] | None]:
    encoding = config.get("encoding") or "base64"
    if encoding == "base64+zstd":
        raise invalid_params("base64+zstd is not supported by the local chain")
    # jsonParsed falls back to base64, as a validator does for accounts it cannot parse.
    return ("base58" if encoding in ("base58", "binary") else "base64"), config.get("dataSlice")

"""The JSON shapes the RPC answers with, in the forms solana-py/solders parse.

Where solders has a response class its own `to_json()` is used (it emits exactly what
`from_json` accepts, see the research note); getTransaction's result, which would need
a dozen nested solders types, is written by hand in the shape the note tested.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from solders.account import Account
from solders.message import MessageV0
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorBorshIO,
    TransactionErrorDuplicateInstruction,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorType,
    TransactionReturnData,
)

from adapters.localnet.base58 import b58decode, b58encode
from adapters.localnet.emulation import instruction_error_text
from adapters.localnet.execution import ExecutionResult, TokenBalance
from adapters.localnet.history import TransactionRecord
from adapters.localnet.token_accounts import ui_amount, ui_amount_string

MAX_RAW_TRANSACTION = 1232
_MAX_BASE64, _MAX_BASE58 = 1644, 1683

_TRANSACTION_ERROR_TEXT = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidProgramForExecution": "This program may not be used for executing instructions",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "UnsupportedVersion": "Transaction version is unsupported",
    "AddressLookupTableNotFound": "Transaction loads an address table account that doesn't exist",
    "InvalidAddressLookupTableOwner": "Transaction loads an address table account with an invalid owner",
    "InvalidAddressLookupTableData": "Transaction loads an address table account with invalid data",
    "InvalidAddressLookupTableIndex": "Transaction address table lookup uses an invalid index",
}


class TransactionDecodeError(ValueError):
    """A transaction parameter that is not a transaction (the RPC answers -32602)."""


def decode_transaction(text: str, encoding: str) -> VersionedTransaction:
    """A wire transaction in `encoding` ("base64" or "base58"), as a validator decodes it."""
    name = "solana_sdk::transaction::versioned::VersionedTransaction"
    if encoding not in ("base64", "base58"):
        raise TransactionDecodeError(f"unsupported encoding: {encoding}. Supported encodings: base58, base64")
    limit = _MAX_BASE64 if encoding == "base64" else _MAX_BASE58
    if len(text) > limit:
        raise TransactionDecodeError(
            f"{encoding} encoded {name} too large: {len(text)} bytes (max: encoded/raw {limit}/1232)"
        )
    try:
        raw = base64.b64decode(text, validate=True) if encoding == "base64" else b58decode(text)
    except ValueError as error:
        raise TransactionDecodeError(f"invalid {encoding} encoding: {error}") from None
    if len(raw) > MAX_RAW_TRANSACTION:
        raise TransactionDecodeError(f"decoded {name} too large: {len(raw)} bytes (max: 1232 bytes)")
    try:
        return VersionedTransaction.from_bytes(raw)
    except Exception as error:
        raise TransactionDecodeError(f"failed to deserialize {name}: {error}") from None


def error_json(error: TransactionErrorType | None) -> Any:
    """A TransactionError as the RPC writes it (`"BlockhashNotFound"`, `{"InstructionError":[..]}`)."""
    if error is None:
        return None
    return json.loads(RpcSimulateTransactionResult(err=error).to_json())["err"]


def error_text(error: TransactionErrorType) -> str:
    """The validator's wording, as in "Transaction simulation failed: <text>"."""
    if isinstance(error, TransactionErrorInstructionError):
        inner = error.err
        text = (
            f"Failed to serialize or deserialize account data: {inner.value}"
            if isinstance(inner, InstructionErrorBorshIO)
            else instruction_error_text(inner)
        )
        return f"Error processing Instruction {error.index}: {text}"
    if isinstance(error, TransactionErrorInsufficientFundsForRent):
        return f"Transaction results in an account ({error.account_index}) with insufficient funds for rent"
    if isinstance(error, TransactionErrorDuplicateInstruction):
        return f"Transaction contains a duplicate instruction ({error.index}) that is not allowed"
    rendered = error_json(error)
    if isinstance(rendered, str):
        return _TRANSACTION_ERROR_TEXT.get(rendered, rendered)
    return json.dumps(rendered)


def simulation_result(
    result: ExecutionResult,
    *,
    accounts: list[Account | None] | None = None,
    with_balances: bool = True,
) -> RpcSimulateTransactionResult:
    """simulateTransaction's value (and sendTransaction's -32002 data) for a result."""
    return_data = (
        TransactionReturnData(result.return_data[0], list(result.return_data[1]))
        if result.return_data is not None
        else None
    )
    return RpcSimulateTransactionResult(
        err=result.err,
        logs=result.logs,
        accounts=accounts,
        units_consumed=result.units_consumed,
        return_data=return_data,
        fee=result.fee if with_balances else None,
        pre_balances=result.pre_balances if with_balances and result.landed else None,
        post_balances=result.post_balances if with_balances and result.landed else None,
    )


def token_balance_json(balance: TokenBalance) -> dict[str, Any]:
    return {
        "accountIndex": balance.account_index,
        "mint": str(balance.mint),
        "owner": str(balance.owner),
        "programId": str(balance.program_id),
        "uiTokenAmount": ui_token_amount_json(balance.amount, balance.decimals),
    }


def ui_token_amount_json(amount: int, decimals: int) -> dict[str, Any]:
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": ui_amount(amount, decimals),
        "uiAmountString": ui_amount_string(amount, decimals),
    }


def account_json(account: Account | None, encoding: str, data_slice: dict[str, int] | None) -> Any:
    """An account in getAccountInfo's shape (`data` as `[text, encoding]`)."""
    if account is None:
        return None
    data = account.data
    if data_slice is not None:
        offset, length = int(data_slice.get("offset", 0)), int(data_slice.get("length", len(data)))
        data = data[offset : offset + length]
    text = b58encode(data) if encoding == "base58" else base64.b64encode(data).decode()
    return {
        "data": [text, "base58" if encoding == "base58" else "base64"],
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": account.rent_epoch,
        "space": len(account.data),
    }


def transaction_json(record: TransactionRecord, encoding: str) -> dict[str, Any]:
    """getTransaction's result for a landed transaction."""
    tx, result = record.transaction, record.result
    message = tx.message
    is_v0 = isinstance(message, MessageV0)
    if encoding == "base64":
        transaction: Any = [base64.b64encode(bytes(tx)).decode(), "base64"]
    elif encoding == "base58":
        transaction = [b58encode(bytes(tx)), "base58"]
    else:  # json, and jsonParsed answered in the (also accepted) unparsed form
        header = message.header
        message_json: dict[str, Any] = {
            "header": {
                "numRequiredSignatures": header.num_required_signatures,
                "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
            },
            "accountKeys": [str(key) for key in message.account_keys],
            "recentBlockhash": str(message.recent_blockhash),
            "instructions": [
                {
                    "programIdIndex": ix.program_id_index,
                    "accounts": list(ix.accounts),
                    "data": b58encode(bytes(ix.data)),
                    "stackHeight": None,
                }
                for ix in message.instructions
            ],
        }
        if isinstance(message, MessageV0):
            message_json["addressTableLookups"] = [
                {
                    "accountKey": str(lookup.account_key),
                    "writableIndexes": list(lookup.writable_indexes),
                    "readonlyIndexes": list(lookup.readonly_indexes),
                }
                for lookup in message.address_table_lookups
            ]
        transaction = {"signatures": [str(sig) for sig in tx.signatures], "message": message_json}
    err = error_json(result.err)
    view = result.view
    meta: dict[str, Any] = {
        "err": err,
        "status": {"Ok": None} if err is None else {"Err": err},
        "fee": result.fee,
        "preBalances": result.pre_balances,
        "postBalances": result.post_balances,
        "innerInstructions": [
            {
                "index": index,
                "instructions": [
                    {
                        "programIdIndex": inner.program_id_index,
                        "accounts": list(inner.accounts),
                        "data": b58encode(inner.data),
                        "stackHeight": inner.stack_height,
                    }
                    for inner in group
                ],
            }
            for index, group in sorted(result.inner_instructions.items())
        ],
        "logMessages": result.logs,
        "preTokenBalances": [token_balance_json(b) for b in result.pre_token_balances],
        "postTokenBalances": [token_balance_json(b) for b in result.post_token_balances],
        "rewards": [],
        "loadedAddresses": {
            "writable": [str(k) for k in view.loaded_writable] if view is not None else [],
            "readonly": [str(k) for k in view.loaded_readonly] if view is not None else [],
        },
        "computeUnitsConsumed": result.units_consumed,
    }
    if result.return_data is not None:
        program_id, data = result.return_data
        meta["returnData"] = {
            "programId": str(program_id),
            "data": [base64.b64encode(data).decode(), "base64"],
        }
    return {
        "slot": record.slot,
        "blockTime": record.block_time,
        "version": 0 if is_v0 else "legacy",
        "transaction": transaction,
        "meta": meta,
    }

"""What a sent swap came to: the receipt of one that landed, read from its transaction's
token balances, and the error of one that failed, in words (a program's custom error
decoded by that program's table).

Apart from the venue's send/confirm loop (`onchain_dex`) because this only reads what the
node returned and talks to no node: pure functions over solders types.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionErrorInstructionError,
    TransactionErrorType,
    UiTransactionStatusMeta,
)

from adapters.solana.amounts import ratio, units
from adapters.solana.programs import decode_program_error
from domain.ports import SwapReceipt


def swap_receipt(
    tx_hash: str,
    tx: VersionedTransaction,
    meta: UiTransactionStatusMeta,
    slot: int,
    *,
    vault_in: Pubkey,
    vault_out: Pubkey,
    decimals_in: int,
    decimals_out: int,
) -> SwapReceipt:
    """What the landed swap did, from the transaction's token balances: the pool's input
    vault grew by what the wallet paid in, its output vault shrank by what it paid out
    (the wallet's own SOL moves by rent and fees too, so it is not the measure)."""
    keys = list(tx.message.account_keys)

    def held(balances: Sequence[Any] | None, vault: Pubkey) -> int:
        index = keys.index(vault)
        return sum(int(b.ui_token_amount.amount) for b in balances or [] if b.account_index == index)

    spent = held(meta.post_token_balances, vault_in) - held(meta.pre_token_balances, vault_in)
    received = held(meta.pre_token_balances, vault_out) - held(meta.post_token_balances, vault_out)
    amount_in = units(spent, decimals_in)
    amount_out = units(received, decimals_out)
    return SwapReceipt(
        tx_hash=tx_hash,
        executed_price=ratio(Fraction(amount_out) / Fraction(amount_in)) if amount_in > 0 else Decimal(0),
        amount_out=amount_out,
        slot=slot,
        fee_paid=units(int(meta.fee), 9),
        amount_in=amount_in,
    )


def describe_error(err: TransactionErrorType, instructions: Sequence[Instruction]) -> str:
    """The chain's error in words, a program's custom error decoded by its table."""
    if isinstance(err, TransactionErrorInstructionError):
        index, inner = err.index, err.err
        program = instructions[index].program_id if index < len(instructions) else None
        if isinstance(inner, InstructionErrorCustom) and program is not None:
            return f"instruction {index}: {decode_program_error(program, inner.code)}"
        return f"instruction {index} ({program}): {inner}"
    return str(err)


def instructions_of(tx: VersionedTransaction) -> list[Instruction]:
    """The transaction's instructions with their program ids (accounts left out: an error
    names its instruction by index, and the program is all `describe_error` needs)."""
    message = tx.message
    keys = message.account_keys
    return [Instruction(keys[ix.program_id_index], bytes(ix.data), []) for ix in message.instructions]

"""A transaction's message resolved to full account keys and privileges.

The executor needs, for every instruction, its program id and each account with the
signer/writable privileges the message grants; for v0 messages that means loading the
addresses of the address lookup tables it uses. Keys are ordered as the runtime orders
them (static keys, then loaded writable, then loaded readonly), which is also the order
getTransaction's `accountIndex` and balances use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from solders.account import Account
from solders.address_lookup_table_account import ID as ADDRESS_LOOKUP_TABLE_PROGRAM_ID
from solders.address_lookup_table_account import AddressLookupTable
from solders.hash import Hash
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.transaction_status import TransactionErrorFieldless

from adapters.localnet.emulation import AccountMetaView


class MessageRefused(Exception):
    """The message cannot be loaded (a lookup table is missing or wrong)."""

    def __init__(self, error: TransactionErrorFieldless) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class InstructionView:
    program_id: Pubkey
    program_index: int
    data: bytes
    account_indexes: tuple[int, ...]


@dataclass(frozen=True)
class MessageView:
    keys: tuple[Pubkey, ...]
    static_count: int
    loaded_writable: tuple[Pubkey, ...]
    loaded_readonly: tuple[Pubkey, ...]
    signer: tuple[bool, ...]
    writable: tuple[bool, ...]
    instructions: tuple[InstructionView, ...]
    num_signatures: int
    recent_blockhash: Hash

    @property
    def payer(self) -> Pubkey:
        return self.keys[0]

    def metas(self, instruction: InstructionView) -> list[AccountMetaView]:
        return [
            AccountMetaView(self.keys[i], self.signer[i], self.writable[i])
            for i in instruction.account_indexes
        ]

    def writable_keys(self) -> list[Pubkey]:
        return [key for key, writable in zip(self.keys, self.writable, strict=True) if writable]

    def signers(self) -> list[Pubkey]:
        return list(self.keys[: self.num_signatures])


def resolve_message(message: Message | MessageV0, load: Callable[[Pubkey], Account | None]) -> MessageView:
    """The view of a sanitized message; MessageRefused if a lookup table cannot be used."""
    static = list(message.account_keys)
    header = message.header
    n_signed, n_ro_signed, n_ro_unsigned = (
        header.num_required_signatures,
        header.num_readonly_signed_accounts,
        header.num_readonly_unsigned_accounts,
    )
    writable = [
        i < n_signed - n_ro_signed if i < n_signed else i < len(static) - n_ro_unsigned
        for i in range(len(static))
    ]
    loaded_writable: list[Pubkey] = []
    loaded_readonly: list[Pubkey] = []
    if isinstance(message, MessageV0):
        for lookup in message.address_table_lookups:
            addresses = _table_addresses(lookup.account_key, load)
            try:
                loaded_writable += [addresses[i] for i in lookup.writable_indexes]
                loaded_readonly += [addresses[i] for i in lookup.readonly_indexes]
            except IndexError:
                raise MessageRefused(TransactionErrorFieldless.InvalidAddressLookupTableIndex) from None
    keys = (*static, *loaded_writable, *loaded_readonly)
    writable += [True] * len(loaded_writable) + [False] * len(loaded_readonly)
    instructions = tuple(
        InstructionView(keys[ix.program_id_index], ix.program_id_index, bytes(ix.data), tuple(ix.accounts))
        for ix in message.instructions
    )
    # The runtime demotes an invoked program's key to read-only.
    for ix in instructions:
        writable[ix.program_index] = False
    return MessageView(
        keys=keys,
        static_count=len(static),
        loaded_writable=tuple(loaded_writable),
        loaded_readonly=tuple(loaded_readonly),
        signer=tuple(i < n_signed for i in range(len(keys))),
        writable=tuple(writable),
        instructions=instructions,
        num_signatures=n_signed,
        recent_blockhash=message.recent_blockhash,
    )


def _table_addresses(table: Pubkey, load: Callable[[Pubkey], Account | None]) -> list[Pubkey]:
    account = load(table)
    if account is None:
        raise MessageRefused(TransactionErrorFieldless.AddressLookupTableNotFound)
    if account.owner != ADDRESS_LOOKUP_TABLE_PROGRAM_ID:
        raise MessageRefused(TransactionErrorFieldless.InvalidAddressLookupTableOwner)
    try:
        return list(AddressLookupTable.deserialize(account.data).addresses)
    except Exception:
        raise MessageRefused(TransactionErrorFieldless.InvalidAddressLookupTableData) from None

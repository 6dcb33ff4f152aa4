"""What landed: transaction records by signature, and recent prioritization fees.

Kept in memory and bounded (`limit` records, the oldest forgotten first; fees for the
last 150 slots). Statuses are answered from the whole kept history whatever
`searchTransactionHistory` says, since the chain finalizes everything at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from adapters.localnet.execution import ExecutionResult

PRIORITIZATION_FEE_SLOTS = 150


@dataclass(frozen=True)
class TransactionRecord:
    """A landed transaction (success or failure) as getTransaction reports it."""

    signature: Signature
    slot: int
    block_time: int
    transaction: VersionedTransaction
    result: ExecutionResult

    @property
    def signers(self) -> list[Pubkey]:
        return self.result.view.signers() if self.result.view is not None else []


class TransactionHistory:
    """Landed transactions by signature, in landing order."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._records: OrderedDict[Signature, TransactionRecord] = OrderedDict()

    def add(self, record: TransactionRecord) -> None:
        self._records[record.signature] = record
        while len(self._records) > self._limit:
            self._records.popitem(last=False)

    def get(self, signature: Signature) -> TransactionRecord | None:
        return self._records.get(signature)

    def __contains__(self, signature: Signature) -> bool:
        return signature in self._records

    def signatures(self, signer: Pubkey | None = None) -> list[Signature]:
        return [sig for sig, record in self._records.items() if signer is None or signer in record.signers]


@dataclass
class _SlotFees:
    block_min: int
    account_min: dict[Pubkey, int] = field(default_factory=dict)


class PrioritizationFees:
    """Per-slot compute-unit prices of landed transactions, as agave's fee cache keeps them.

    For a slot, the answer is the block's lowest price, raised to the lowest price paid
    by transactions that write-locked one of the requested accounts when that is higher
    (agave's rule); a slot without transactions answers 0.
    """

    def __init__(self, window: int = PRIORITIZATION_FEE_SLOTS) -> None:
        self._window = window
        self._slots: dict[int, _SlotFees] = {}

    def record(self, slot: int, unit_price: int, writable: Iterable[Pubkey]) -> None:
        fees = self._slots.get(slot)
        if fees is None:
            fees = self._slots[slot] = _SlotFees(unit_price)
        fees.block_min = min(fees.block_min, unit_price)
        for key in writable:
            fees.account_min[key] = min(fees.account_min.get(key, unit_price), unit_price)
        for old in [s for s in self._slots if s <= slot - self._window]:
            del self._slots[old]

    def recent(self, current_slot: int, addresses: Iterable[Pubkey] = ()) -> list[tuple[int, int]]:
        wanted = list(addresses)
        answer = []
        for slot in range(max(0, current_slot - self._window + 1), current_slot + 1):
            fees = self._slots.get(slot)
            fee = 0
            if fees is not None:
                fee = fees.block_min
                for key in wanted:
                    fee = max(fee, fees.account_min.get(key, 0))
            answer.append((slot, fee))
        return answer

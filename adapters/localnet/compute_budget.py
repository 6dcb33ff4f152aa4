"""ComputeBudget instructions, the compute-unit limit and the fee, by LiteSVM's rules.

Measured on LiteSVM (solders 0.29): without SetComputeUnitLimit the limit is 3,000 units
per builtin instruction (System, ComputeBudget, ...) plus 200,000 per other instruction
(emulated programs count as other), at most 1,400,000; a larger requested limit is
clamped to 1,400,000. The fee is 5,000 lamports per signature plus
ceil(limit × micro-lamports per unit / 1,000,000). A ComputeBudget instruction costs
150 units. A malformed or repeated ComputeBudget instruction fails the transaction
before it runs (nothing charged, nothing stored), as LiteSVM does.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.transaction_status import (
    InstructionErrorFieldless,
    TransactionErrorDuplicateInstruction,
    TransactionErrorInstructionError,
)

from adapters.localnet.token_accounts import COMPUTE_BUDGET_PROGRAM_ID, SYSTEM_PROGRAM_ID

LAMPORTS_PER_SIGNATURE = 5_000
MAX_COMPUTE_UNIT_LIMIT = 1_400_000
DEFAULT_INSTRUCTION_UNITS = 200_000
BUILTIN_INSTRUCTION_UNITS = 3_000
COMPUTE_BUDGET_INSTRUCTION_UNITS = 150
_MIN_HEAP, _MAX_HEAP = 32 * 1024, 256 * 1024

# Builtins for the default limit: the programs agave runs natively.
BUILTIN_PROGRAM_IDS = frozenset(
    Pubkey.from_string(key)
    for key in (
        str(SYSTEM_PROGRAM_ID),
        str(COMPUTE_BUDGET_PROGRAM_ID),
        "Vote111111111111111111111111111111111111111",
        "Stake11111111111111111111111111111111111111",
        "Config1111111111111111111111111111111111111",
        "AddressLookupTab1e1111111111111111111111111",
        "BPFLoader1111111111111111111111111111111111",
        "BPFLoader2111111111111111111111111111111111",
        "BPFLoaderUpgradeab1e11111111111111111111111",
        "LoaderV411111111111111111111111111111111111",
        "Ed25519SigVerify111111111111111111111111111",
        "KeccakSecp256k11111111111111111111111111111",
        "Secp256r1SigVerify1111111111111111111111111",
    )
)


class ComputeBudgetError(Exception):
    """A ComputeBudget instruction the runtime refuses before execution."""

    def __init__(
        self, error: TransactionErrorInstructionError | TransactionErrorDuplicateInstruction
    ) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class ComputeBudget:
    """What the transaction's ComputeBudget instructions ask for."""

    unit_limit: int
    unit_price: int  # micro-lamports per compute unit
    # RequestHeapFrame / SetLoadedAccountsDataSizeLimit, re-sent with every LiteSVM run.
    passthrough: tuple[Instruction, ...] = field(default=())

    def fee(self, signatures: int) -> int:
        return LAMPORTS_PER_SIGNATURE * signatures + -(-self.unit_limit * self.unit_price // 1_000_000)


def parse_compute_budget(instructions: Sequence[tuple[Pubkey, bytes]]) -> ComputeBudget:
    """The budget of a transaction given its (program id, data) pairs; ComputeBudgetError if malformed."""
    limit: int | None = None
    price: int | None = None
    heap: int | None = None
    data_size: int | None = None
    passthrough: list[Instruction] = []
    default_limit = 0
    for index, (program_id, data) in enumerate(instructions):
        if program_id != COMPUTE_BUDGET_PROGRAM_ID:
            default_limit += (
                BUILTIN_INSTRUCTION_UNITS if program_id in BUILTIN_PROGRAM_IDS else DEFAULT_INSTRUCTION_UNITS
            )
            continue
        default_limit += BUILTIN_INSTRUCTION_UNITS
        kind, value = _decode(index, data)
        seen = {1: heap, 2: limit, 3: price, 4: data_size}[kind]
        if seen is not None:
            raise ComputeBudgetError(TransactionErrorDuplicateInstruction(index))
        if kind == 1:
            if not (_MIN_HEAP <= value <= _MAX_HEAP and value % 1024 == 0):
                raise _invalid(index)
            heap = value
            passthrough.append(Instruction(COMPUTE_BUDGET_PROGRAM_ID, data, []))
        elif kind == 2:
            limit = value
        elif kind == 3:
            price = value
        else:
            data_size = value
            passthrough.append(Instruction(COMPUTE_BUDGET_PROGRAM_ID, data, []))
    unit_limit = min(limit if limit is not None else default_limit, MAX_COMPUTE_UNIT_LIMIT)
    return ComputeBudget(unit_limit, price or 0, tuple(passthrough))


def _decode(index: int, data: bytes) -> tuple[int, int]:
    formats = {1: "<I", 2: "<I", 3: "<Q", 4: "<I"}
    if not data or data[0] not in formats or len(data) != 1 + struct.calcsize(formats[data[0]]):
        raise _invalid(index)
    return data[0], struct.unpack(formats[data[0]], data[1:])[0]


def _invalid(index: int) -> ComputeBudgetError:
    return ComputeBudgetError(
        TransactionErrorInstructionError(index, InstructionErrorFieldless.InvalidInstructionData)
    )

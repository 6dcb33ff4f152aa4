"""A local Solana chain for offline tests and demos.

`LocalChain` wraps one in-process LiteSVM (the real System, SPL Token, Token-2022,
Associated Token Account, Memo and ComputeBudget programs) and adds what a validator
has and LiteSVM lacks: slots and expiring blockhashes, signature checks, a history
of landed transactions with balances and token balances, prioritization fees, and
faults to inject. `rpc_server` serves it over JSON-RPC on 127.0.0.1 so the engine's
solana-py `AsyncClient` talks to it as to any validator.

The DEX pool programs (Raydium CPMM, Meteora DAMM v2) are *emulated*: their binaries
are in no package these machines can install and may not be copied into the project,
and LiteSVM can only run real SBF programs. So the chain runs every instruction
addressed to a registered `EmulatedProgram` in Python, between runs of ordinary
instructions executed by LiteSVM, and keeps the whole transaction atomic (a snapshot
of every account it references is restored on failure). `emulation` is the interface
those emulations are written against; `ata` is an emulated Associated Token Account
program (LiteSVM does ship the real one, see `ata`'s docstring); `token_transfer` is
the SPL Token transfer an emulated program "CPIs" into.
"""

from adapters.localnet.chain import LocalChain, PreflightFailure, SignatureVerificationFailed
from adapters.localnet.emulation import (
    ChainClock,
    EmulatedProgram,
    InstructionContext,
    InstructionFailure,
    token_transfer,
)

__all__ = [
    "ChainClock",
    "EmulatedProgram",
    "InstructionContext",
    "InstructionFailure",
    "LocalChain",
    "PreflightFailure",
    "SignatureVerificationFailed",
    "token_transfer",
]

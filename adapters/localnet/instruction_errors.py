"""`InstructionFailure`, how an emulated instruction fails, and the runtime's error texts.

The error is a solders `InstructionError` (Custom(code) or a field-less variant), so
the RPC renders it as a validator does and solders parses it back; the texts are the
runtime's, as in "Program X failed: <text>" and "Error processing Instruction 2: <text>".
"""

from __future__ import annotations

from solders.transaction_status import InstructionErrorCustom, InstructionErrorFieldless

InstructionError = InstructionErrorCustom | InstructionErrorFieldless

# The runtime's text for an instruction error, as in "Program X failed: <text>".
_ERROR_TEXT = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "UnbalancedInstruction": "sum of account balances before and after instruction do not match",
    "ModifiedProgramId": "instruction illegally modified the program id of an account",
    "ExternalAccountLamportSpend": "instruction spent from the balance of an account it does not own",
    "ExternalAccountDataModified": "instruction modified data of an account it does not own",
    "ReadonlyLamportChange": "instruction changed the balance of a read-only account",
    "ReadonlyDataModified": "instruction modified data of a read-only account",
    "NotEnoughAccountKeys": "insufficient account keys for instruction",
    "AccountNotExecutable": "instruction expected an executable account",
    "MissingAccount": "An account required by the instruction is missing",
    "InvalidSeeds": "Provided seeds do not result in a valid address",
    "ComputationalBudgetExceeded": "Computational budget exceeded",
    "PrivilegeEscalation": "Cross-program invocation with unauthorized signer or writable account",
    "ProgramFailedToComplete": "Program failed to complete",
    "IncorrectAuthority": "Incorrect authority provided",
    "InvalidAccountOwner": "Invalid account owner",
    "ArithmeticOverflow": "Program arithmetic overflowed",
    "IllegalOwner": "Provided owner is not allowed",
    "AccountNotRentExempt": "An account does not have enough lamports to be rent-exempt",
    "Immutable": "Account is immutable",
}


def instruction_error_text(error: InstructionError) -> str:
    """The runtime's wording for `error` (`custom program error: 0x1775` for Custom(6005))."""
    if isinstance(error, InstructionErrorCustom):
        return f"custom program error: {error.code:#x}"
    name = str(error).rsplit(".", 1)[-1]
    return _ERROR_TEXT.get(name, name)


class InstructionFailure(Exception):
    """An emulated instruction failed with `error`: Custom(code) for an int, else a named
    `InstructionError` ("InvalidAccountData", "MissingRequiredSignature", ...).

    An unknown name is refused here, at the raise, because a made-up variant in a
    response would make solders reject the whole RPC answer.
    """

    def __init__(self, error: int | str, detail: str | None = None) -> None:
        self.error: InstructionError
        if isinstance(error, int):
            if not 0 <= error < 2**32:
                raise ValueError(f"a custom program error is a u32, not {error}")
            self.error = InstructionErrorCustom(error)
        else:
            if error == "BorshIoError" or not hasattr(InstructionErrorFieldless, error):
                raise ValueError(f"{error!r} is not a field-less InstructionError variant")
            self.error = getattr(InstructionErrorFieldless, error)
        super().__init__(detail or instruction_error_text(self.error))

    @property
    def text(self) -> str:
        return instruction_error_text(self.error)

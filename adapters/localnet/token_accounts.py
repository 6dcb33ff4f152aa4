"""SPL Token account and mint layouts, and the program ids the local chain knows.

A token account is 165 bytes (Token-2022 appends an account-type byte and TLV
extensions after them); a mint is 82. Decoded here by hand rather than through
`solders.token.state` so the chain sees the raw state byte (solders refuses an
uninitialized account outright) and can write an account back byte for byte,
keeping whatever follows the base layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from decimal import Decimal

from solders.account import Account
from solders.pubkey import Pubkey

# The program ids are the engine's own (adapters/solana/programs.py), re-exported here.
from adapters.solana.programs import ASSOCIATED_TOKEN_PROGRAM_ID as ASSOCIATED_TOKEN_PROGRAM_ID
from adapters.solana.programs import COMPUTE_BUDGET_PROGRAM_ID as COMPUTE_BUDGET_PROGRAM_ID
from adapters.solana.programs import SYSTEM_PROGRAM_ID as SYSTEM_PROGRAM_ID
from adapters.solana.programs import TOKEN_2022_PROGRAM_ID as TOKEN_2022_PROGRAM_ID
from adapters.solana.programs import TOKEN_PROGRAM_ID as TOKEN_PROGRAM_ID
from adapters.solana.programs import WSOL_MINT

NATIVE_MINT = WSOL_MINT

TOKEN_PROGRAMS = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})

TOKEN_ACCOUNT_LEN = 165
MINT_LEN = 82
# Token-2022 writes this byte right after the 165-byte base of an account.
TOKEN_2022_ACCOUNT_TYPE = 2

STATE_UNINITIALIZED, STATE_INITIALIZED, STATE_FROZEN = 0, 1, 2

_COPTION_KEY = struct.Struct("<I32s")
# (tag offset, value size) of the token account's options: delegate, is_native, close authority.
_OPTION_FIELDS = ((72, 32), (109, 8), (129, 32))
_COPTION_U64 = struct.Struct("<IQ")


@dataclass(frozen=True)
class TokenAccountState:
    """The 165-byte base of an SPL token account."""

    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None
    state: int
    is_native: int | None  # the rent-exempt reserve of a wrapped-SOL account
    delegated_amount: int
    close_authority: Pubkey | None

    @property
    def is_frozen(self) -> bool:
        return self.state == STATE_FROZEN

    def with_amount(self, amount: int) -> TokenAccountState:
        return replace(self, amount=amount)

    def encode(self) -> bytes:
        return (
            bytes(self.mint)
            + bytes(self.owner)
            + struct.pack("<Q", self.amount)
            + _pack_key(self.delegate)
            + bytes([self.state])
            + _COPTION_U64.pack(0 if self.is_native is None else 1, self.is_native or 0)
            + struct.pack("<Q", self.delegated_amount)
            + _pack_key(self.close_authority)
        )


@dataclass(frozen=True)
class MintState:
    """The 82-byte base of an SPL mint."""

    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool
    freeze_authority: Pubkey | None

    def encode(self) -> bytes:
        return (
            _pack_key(self.mint_authority)
            + struct.pack("<QB?", self.supply, self.decimals, self.is_initialized)
            + _pack_key(self.freeze_authority)
        )


def _pack_key(key: Pubkey | None) -> bytes:
    return _COPTION_KEY.pack(0 if key is None else 1, bytes(key) if key is not None else bytes(32))


def _unpack_key(data: bytes, offset: int) -> Pubkey | None:
    tag, raw = _COPTION_KEY.unpack_from(data, offset)
    return Pubkey.from_bytes(raw) if tag == 1 else None


def decode_token_account_data(data: bytes) -> TokenAccountState | None:
    """The base state of token-account bytes, or None when they are not one (any state)."""
    if len(data) < TOKEN_ACCOUNT_LEN:
        return None
    if len(data) > TOKEN_ACCOUNT_LEN and data[TOKEN_ACCOUNT_LEN] != TOKEN_2022_ACCOUNT_TYPE:
        return None
    native_tag, native = _COPTION_U64.unpack_from(data, 109)
    return TokenAccountState(
        mint=Pubkey.from_bytes(data[0:32]),
        owner=Pubkey.from_bytes(data[32:64]),
        amount=struct.unpack_from("<Q", data, 64)[0],
        delegate=_unpack_key(data, 72),
        state=data[108],
        is_native=native if native_tag == 1 else None,
        delegated_amount=struct.unpack_from("<Q", data, 121)[0],
        close_authority=_unpack_key(data, 129),
    )


def decode_token_account(account: Account | None) -> TokenAccountState | None:
    """An initialized (or frozen) token account owned by Token or Token-2022, else None."""
    if account is None or account.owner not in TOKEN_PROGRAMS:
        return None
    state = decode_token_account_data(account.data)
    if state is None or state.state == STATE_UNINITIALIZED:
        return None
    return state


def decode_mint(account: Account | None) -> MintState | None:
    """An initialized mint owned by Token or Token-2022, else None."""
    if account is None or account.owner not in TOKEN_PROGRAMS or len(account.data) < MINT_LEN:
        return None
    data = account.data
    supply, decimals, initialized = struct.unpack_from("<QB?", data, 36)
    if not initialized:
        return None
    return MintState(_unpack_key(data, 0), supply, decimals, initialized, _unpack_key(data, 46))


def with_token_state(account: Account, state: TokenAccountState, *, lamports: int | None = None) -> Account:
    """`account` with its first 165 bytes replaced by `state` (extensions kept).

    An absent option keeps the bytes behind its zero tag, as the token program leaves
    them (clearing a delegate zeroes the tag only), so accounts match byte for byte.
    """
    encoded = bytearray(state.encode())
    old = account.data
    if len(old) >= TOKEN_ACCOUNT_LEN:
        for tag_at, size in _OPTION_FIELDS:
            if encoded[tag_at : tag_at + 4] == bytes(4):
                encoded[tag_at + 4 : tag_at + 4 + size] = old[tag_at + 4 : tag_at + 4 + size]
    data = bytes(encoded) + old[TOKEN_ACCOUNT_LEN:]
    return Account(
        account.lamports if lamports is None else lamports,
        data,
        account.owner,
        account.executable,
        account.rent_epoch,
    )


def ui_amount_string(amount: int, decimals: int) -> str:
    """The amount in whole tokens as the RPC writes it: no exponent, no trailing zeros."""
    text = format(Decimal(amount).scaleb(-decimals), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def ui_amount(amount: int, decimals: int) -> float:
    return float(amount) / float(10**decimals)

"""Byte layouts of SPL Token and Token-2022 accounts: the token account (165 B) and the
mint (82 B), decoded into frozen Structs and encoded back.

One codec for both users of these bytes: the engine's venue code (which reads wallet
balances, vaults and mint decimals, and wants `LayoutError` on anything malformed) and
the local chain (`adapters.localnet.token_accounts`, which reads accounts leniently on
top of this and writes them back). A Token-2022 account or mint with extensions is
longer: the base layout, padding up to 165 bytes, then an account-type byte (1 mint,
2 account) and the extensions; decoding accepts those and reads the base only.
`COption<T>` is a u32 tag (0 None, 1 Some) followed by T's bytes (zeros when None).
"""

from __future__ import annotations

import struct

import msgspec
from solders.pubkey import Pubkey

from adapters.solana.layout_fields import LayoutError, read_key, write_key

TOKEN_ACCOUNT_SIZE = 165
MINT_SIZE = 82

# The byte Token-2022 writes at offset 165 of an extended account or mint.
ACCOUNT_TYPE_MINT = 1
ACCOUNT_TYPE_ACCOUNT = 2

ACCOUNT_STATE_UNINITIALIZED = 0
ACCOUNT_STATE_INITIALIZED = 1
ACCOUNT_STATE_FROZEN = 2

# A token account's options as (tag offset, value size): delegate, is_native, close authority.
TOKEN_ACCOUNT_OPTIONS = ((72, 32), (109, 8), (129, 32))


class TokenAccount(msgspec.Struct, frozen=True):
    """A token account; `state` is the raw state byte, `is_native` the rent-exempt reserve of
    a wrapped-SOL account."""

    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None = None
    state: int = ACCOUNT_STATE_INITIALIZED
    is_native: int | None = None
    delegated_amount: int = 0
    close_authority: Pubkey | None = None

    @property
    def is_frozen(self) -> bool:
        return self.state == ACCOUNT_STATE_FROZEN


class Mint(msgspec.Struct, frozen=True):
    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool = True
    freeze_authority: Pubkey | None = None


def _option_tag(data: bytes, offset: int, name: str) -> bool:
    tag: int = struct.unpack_from("<I", data, offset)[0]
    if tag > 1:
        raise LayoutError(f"{name}: option tag {tag} at {offset}")
    return tag == 1


def _option_key(data: bytes, offset: int, name: str) -> Pubkey | None:
    return read_key(data, offset + 4) if _option_tag(data, offset, name) else None


def _put_option_key(buffer: bytearray, offset: int, key: Pubkey | None) -> None:
    struct.pack_into("<I", buffer, offset, 0 if key is None else 1)
    buffer[offset + 4 : offset + 36] = bytes(32) if key is None else bytes(key)


def _check_token_size(data: bytes, name: str, size: int, account_type: int) -> None:
    if len(data) == size or (len(data) > TOKEN_ACCOUNT_SIZE and data[TOKEN_ACCOUNT_SIZE] == account_type):
        return
    raise LayoutError(f"{name}: {len(data)} bytes is neither the base {size} nor an extended account")


def decode_token_account(data: bytes) -> TokenAccount:
    """mint 0, owner 32, amount 64, delegate 72, state 108, is_native 109, delegated 121, close 129."""
    _check_token_size(data, "token account", TOKEN_ACCOUNT_SIZE, ACCOUNT_TYPE_ACCOUNT)
    (amount,) = struct.unpack_from("<Q", data, 64)
    state = data[108]
    if state > ACCOUNT_STATE_FROZEN:
        raise LayoutError(f"token account: state {state}")
    (native_reserve,) = struct.unpack_from("<Q", data, 113)
    (delegated_amount,) = struct.unpack_from("<Q", data, 121)
    return TokenAccount(
        mint=read_key(data, 0),
        owner=read_key(data, 32),
        amount=amount,
        delegate=_option_key(data, 72, "token account delegate"),
        state=state,
        is_native=native_reserve if _option_tag(data, 109, "token account is_native") else None,
        delegated_amount=delegated_amount,
        close_authority=_option_key(data, 129, "token account close_authority"),
    )


def encode_token_account(account: TokenAccount) -> bytes:
    """The 165-byte base layout (an absent option's bytes are zeros)."""
    buffer = bytearray(TOKEN_ACCOUNT_SIZE)
    write_key(buffer, 0, account.mint)
    write_key(buffer, 32, account.owner)
    struct.pack_into("<Q", buffer, 64, account.amount)
    _put_option_key(buffer, 72, account.delegate)
    buffer[108] = account.state
    struct.pack_into("<IQ", buffer, 109, 0 if account.is_native is None else 1, account.is_native or 0)
    struct.pack_into("<Q", buffer, 121, account.delegated_amount)
    _put_option_key(buffer, 129, account.close_authority)
    return bytes(buffer)


def decode_mint(data: bytes) -> Mint:
    """mint_authority 0, supply 36, decimals 44, is_initialized 45, freeze_authority 46."""
    _check_token_size(data, "mint", MINT_SIZE, ACCOUNT_TYPE_MINT)
    (supply,) = struct.unpack_from("<Q", data, 36)
    if data[45] > 1:
        raise LayoutError(f"mint: is_initialized byte {data[45]}")
    return Mint(
        mint_authority=_option_key(data, 0, "mint authority"),
        supply=supply,
        decimals=data[44],
        is_initialized=data[45] == 1,
        freeze_authority=_option_key(data, 46, "mint freeze_authority"),
    )


def encode_mint(mint: Mint) -> bytes:
    """The 82-byte base layout."""
    buffer = bytearray(MINT_SIZE)
    _put_option_key(buffer, 0, mint.mint_authority)
    struct.pack_into("<QB?", buffer, 36, mint.supply, mint.decimals, mint.is_initialized)
    _put_option_key(buffer, 46, mint.freeze_authority)
    return bytes(buffer)

"""How the local chain reads and writes SPL token accounts and mints, and the program ids
it knows.

The byte layouts are the engine's (`adapters.solana.token_layouts`); what is the chain's
own is here: an account is read by its owner program and its state, leniently (None
for anything that is not an initialized token account or mint, where the engine's
decoder raises), with the raw state byte kept so the chain can tell uninitialized and
frozen accounts apart (solders' `token.state` refuses an uninitialized account
outright); and an account is written back byte for byte, keeping the bytes behind zero
option tags and whatever follows the base layout (Token-2022 extensions).
"""

from __future__ import annotations

from decimal import Decimal

from solders.account import Account

from adapters.solana.layout_fields import LayoutError

# The program ids are the engine's own (adapters/solana/programs.py), re-exported here.
from adapters.solana.programs import ASSOCIATED_TOKEN_PROGRAM_ID as ASSOCIATED_TOKEN_PROGRAM_ID
from adapters.solana.programs import COMPUTE_BUDGET_PROGRAM_ID as COMPUTE_BUDGET_PROGRAM_ID
from adapters.solana.programs import SYSTEM_PROGRAM_ID as SYSTEM_PROGRAM_ID
from adapters.solana.programs import TOKEN_2022_PROGRAM_ID as TOKEN_2022_PROGRAM_ID
from adapters.solana.programs import TOKEN_PROGRAM_ID as TOKEN_PROGRAM_ID
from adapters.solana.programs import WSOL_MINT
from adapters.solana.token_layouts import (
    ACCOUNT_STATE_UNINITIALIZED,
    MINT_SIZE,
    TOKEN_ACCOUNT_OPTIONS,
    TOKEN_ACCOUNT_SIZE,
    Mint,
    TokenAccount,
    decode_mint,
    decode_token_account,
    encode_token_account,
)

NATIVE_MINT = WSOL_MINT

TOKEN_PROGRAMS = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})


def read_token_account_data(data: bytes) -> TokenAccount | None:
    """The base state of token-account bytes (in any state, uninitialized too), or None when
    they are not a well-formed token account."""
    try:
        return decode_token_account(data)
    except LayoutError:
        return None


def read_token_account(account: Account | None) -> TokenAccount | None:
    """An initialized (or frozen) token account owned by Token or Token-2022, else None."""
    if account is None or account.owner not in TOKEN_PROGRAMS:
        return None
    state = read_token_account_data(account.data)
    if state is None or state.state == ACCOUNT_STATE_UNINITIALIZED:
        return None
    return state


def read_mint(account: Account | None) -> Mint | None:
    """An initialized mint owned by Token or Token-2022, else None (only the first 82 bytes,
    the base layout, are read)."""
    if account is None or account.owner not in TOKEN_PROGRAMS or len(account.data) < MINT_SIZE:
        return None
    try:
        mint = decode_mint(account.data[:MINT_SIZE])
    except LayoutError:
        return None
    return mint if mint.is_initialized else None


def with_token_state(account: Account, state: TokenAccount, *, lamports: int | None = None) -> Account:
    """`account` with its first 165 bytes replaced by `state` (extensions kept).

    An absent option keeps the bytes behind its zero tag, as the token program leaves
    them (clearing a delegate zeroes the tag only), so accounts match byte for byte.
    """
    encoded = bytearray(encode_token_account(state))
    old = account.data
    if len(old) >= TOKEN_ACCOUNT_SIZE:
        for tag_at, size in TOKEN_ACCOUNT_OPTIONS:
            if encoded[tag_at : tag_at + 4] == bytes(4):
                encoded[tag_at + 4 : tag_at + 4 + size] = old[tag_at + 4 : tag_at + 4 + size]
    data = bytes(encoded) + old[TOKEN_ACCOUNT_SIZE:]
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

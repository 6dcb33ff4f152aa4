"""The tokens the engine trades, with their mints and reference prices.

The reference USD prices seed the mock market; real quotes come from the DEX
adapters. A token not listed here is rejected at the API with a clear error.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class Token(msgspec.Struct, frozen=True):
    symbol: str
    mint: str
    decimals: int
    reference_usd: Decimal
    # False for a token whose pools do not exist yet (in mock mode, until it is launched):
    # what sniper orders wait for.
    launched: bool = True


NATIVE_SOL_MINT = "So11111111111111111111111111111111111111112"

TOKENS: dict[str, Token] = {
    t.symbol: t
    for t in (
        Token("SOL", NATIVE_SOL_MINT, 9, Decimal("150")),
        Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6, Decimal("1")),
        Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6, Decimal("1")),
        Token("BONK", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", 5, Decimal("0.00002")),
        Token("JUP", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6, Decimal("0.8")),
        Token("RAY", "4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S5iCNLY3QrkX6R", 6, Decimal("2.5")),
        # A made-up token that launches during a demo or a test (mint is a placeholder).
        Token("LAUNCH", "LaunchMint1111111111111111111111111111111111", 6, Decimal("0.01"), launched=False),
    )
}


def is_native_sol(symbol: str) -> bool:
    """SOL is native, not an SPL token: swapping it needs a wrap or unwrap step."""
    return symbol == "SOL"


def reference_price(token_in: str, token_out: str) -> Decimal:
    """Units of `token_out` per unit of `token_in` at reference prices."""
    return TOKENS[token_in].reference_usd / TOKENS[token_out].reference_usd

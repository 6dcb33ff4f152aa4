"""The wallet that signs the engine's swaps, read from `WALLET_PRIVATE_KEY`.

Accepted forms, as Solana tools write them: a base58 string of the 64-byte secret key
(Phantom's export), or a JSON array of its 64 bytes (`solana-keygen`'s key file; a
32-byte seed is accepted there too). The key is never printed: a refusal says
what form was expected and how long the value was, never the value.
"""

from __future__ import annotations

import json

from solders.keypair import Keypair


class WalletKeyError(ValueError):
    """WALLET_PRIVATE_KEY is not a key; the message holds no part of it."""


def load_keypair(secret: str) -> Keypair:
    text = secret.strip()
    if not text:
        raise WalletKeyError("WALLET_PRIVATE_KEY is empty")
    if not text.startswith("["):
        try:
            return Keypair.from_base58_string(text)
        except BaseException:  # solders panics (a BaseException) on some malformed input
            raise WalletKeyError(
                f"WALLET_PRIVATE_KEY is neither a JSON byte array nor a base58 64-byte secret key "
                f"({len(text)} characters)"
            ) from None
    raw = _json_bytes(text)
    try:
        if len(raw) == 64:
            keypair = Keypair.from_bytes(raw)
        elif len(raw) == 32:
            keypair = Keypair.from_seed(raw)
        else:
            raise WalletKeyError(
                f"WALLET_PRIVATE_KEY decodes to {len(raw)} bytes: expected a 64-byte secret key "
                "(or a 32-byte seed)"
            )
    except WalletKeyError:
        raise
    except Exception:  # solders refuses a secret key whose public half does not match
        raise WalletKeyError(
            "WALLET_PRIVATE_KEY is not a valid ed25519 keypair (its public half does not match)"
        ) from None
    return keypair


def _json_bytes(text: str) -> bytes:
    try:
        values = json.loads(text)
    except ValueError:
        raise WalletKeyError("WALLET_PRIVATE_KEY starts with '[' but is not a JSON array") from None
    if not isinstance(values, list) or not all(isinstance(v, int) and 0 <= v <= 255 for v in values):
        raise WalletKeyError("WALLET_PRIVATE_KEY as JSON must be an array of byte values (0-255)")
    return bytes(values)

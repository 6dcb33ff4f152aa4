"""The field readers and writers every account layout shares, and `LayoutError`.

Kept apart from the per-program layouts (`raydium_cpmm_layouts`, `meteora_damm_v2_layouts`,
`token_layouts`) so that each of those holds one program's accounts and nothing else.
Integers are little-endian; public keys are `solders.pubkey.Pubkey`, never base58 strings.
"""

from __future__ import annotations

from solders.pubkey import Pubkey


class LayoutError(ValueError):
    """The bytes are not the account they were decoded as (size, discriminator, option tag)."""


def check_account(data: bytes, name: str, size: int, discriminator: bytes | None = None) -> None:
    """Raise `LayoutError` unless `data` is `size` bytes starting with `discriminator` (if any)."""
    if len(data) != size:
        raise LayoutError(f"{name}: expected {size} bytes, got {len(data)}")
    if discriminator is not None and data[:8] != discriminator:
        raise LayoutError(f"{name}: discriminator {data[:8].hex()} is not {discriminator.hex()}")


def read_u128(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 16], "little")


def read_u256(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 32], "little")


def read_key(data: bytes, offset: int) -> Pubkey:
    return Pubkey.from_bytes(data[offset : offset + 32])


def write_int(buffer: bytearray, offset: int, value: int, size: int) -> None:
    buffer[offset : offset + size] = value.to_bytes(size, "little")


def write_key(buffer: bytearray, offset: int, key: Pubkey) -> None:
    buffer[offset : offset + 32] = bytes(key)

"""Base58 (Bitcoin alphabet), for instruction data and base58-encoded transactions.

solders encodes keys, hashes and signatures itself but exposes no codec for arbitrary
bytes, and no base58 package is a dependency.
"""

from __future__ import annotations

_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = bytearray()
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_ALPHABET[remainder])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return (b"1" * zeros + bytes(reversed(digits))).decode()


def b58decode(text: str) -> bytes:
    """The bytes of `text`; ValueError on a character outside the alphabet."""
    number = 0
    for char in text.encode():
        if char not in _INDEX:
            raise ValueError(f"invalid base58 character {chr(char)!r}")
        number = number * 58 + _INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + (number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b"")

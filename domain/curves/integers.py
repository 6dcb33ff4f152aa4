"""The Rust integer bounds the pool programs' checked arithmetic fails at.

Apart so that the swap math and the fee math of a program (and the account layouts that
check a swap's new state) share one definition; Python ints stand in for u64/u128/U256.
"""

from __future__ import annotations

U64_MAX = (1 << 64) - 1
U128_MAX = (1 << 128) - 1
U256_MAX = (1 << 256) - 1

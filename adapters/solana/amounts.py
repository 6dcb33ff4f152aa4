"""Raw integer token amounts and exact ratios as the Decimals the engine's events carry.

Apart from the venue (`onchain_dex`) because both its quotes and the receipts read from
landed swaps (`swap_outcome`) write amounts this way, and the rules are the same: written
out in full, without trailing zeros.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction


def units(raw: int, decimals: int) -> Decimal:
    """`raw` smallest units of a token with `decimals` decimals, in whole tokens."""
    with localcontext(prec=60):
        return plain(Decimal(raw) / Decimal(10**decimals))


def ratio(value: Fraction) -> Decimal:
    """A ratio to 18 significant digits: more than any price or fee shown needs."""
    with localcontext(prec=18):
        return plain(Decimal(value.numerator) / Decimal(value.denominator))


def plain(value: Decimal) -> Decimal:
    """Without trailing zeros, and written out in full (150, not 1.5E+2)."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal

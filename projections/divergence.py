"""What `orderengine audit` reports: one `Divergence` per thing that does not hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What a divergence can be: the log's own checks, then the orders and the statistics tables.
KINDS = (
    "hash_mismatch",
    "version_gap",
    "position_order",
    "unfoldable",
    "field",
    "missing_row",
    "extra_row",
    "stats_field",
    "stats_missing_row",
    "stats_extra_row",
    "stats_sum",
)


@dataclass(frozen=True)
class Divergence:
    kind: str  # one of KINDS
    order_id: str  # for stats_sum: the table and key of the sum, e.g. "stats_pairs[SOL,USDC,confirmed]"
    detail: str
    field: str | None = None
    log_value: Any = None
    read_model_value: Any = None
    version: int | None = None

"""Replaying one order's history to a point: what an auditor asks of the log.

`replay` cuts the recorded history at a version or an instant and folds what is
left with the engine's own `fold`, so the state it reports is, by construction,
the state the engine acted on at that point.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.order import OrderState, fold
from domain.ports import RecordedEvent


class ReplayError(ValueError):
    """The cut asked for cannot be made (e.g. both a version and an instant)."""


def replay(
    history: Sequence[RecordedEvent],
    *,
    to_version: int | None = None,
    as_of: datetime | None = None,
) -> tuple[list[RecordedEvent], OrderState]:
    """The events up to `to_version` (inclusive) or recorded at or before `as_of`, and the state then."""
    if to_version is not None and as_of is not None:
        raise ReplayError("give either a version or an instant, not both")
    if to_version is not None and to_version < 0:
        raise ReplayError("the version must be 0 or more")
    if as_of is not None and as_of.tzinfo is None:
        raise ReplayError("the instant needs a timezone, e.g. 2026-11-24T12:00:00Z")
    kept = [
        r
        for r in history
        if (to_version is None or r.version <= to_version) and (as_of is None or r.recorded_at <= as_of)
    ]
    return kept, fold(r.event for r in kept)

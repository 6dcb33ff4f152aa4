"""What can stop a rebuild (projections/rebuild.py). Whatever it is, the live tables are untouched."""

from __future__ import annotations

from domain.errors import EngineError


class RebuildError(EngineError):
    """A rebuild that could not run or finish."""


class UnfoldableLog(RebuildError):
    """An event its order's state does not allow: the live follower stops at the same event,
    so this needs a person, not a retry."""


class ShadowError(RebuildError):
    """A live table cannot be shadowed or swapped (the message says why)."""

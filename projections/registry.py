"""The projections that can be rebuilt from the log, and every log follower's name.

One entry per projection: its tables, the builder a rebuild folds the log with, the
catch-up that applies later events to its shadow tables, the advisory lock that keeps
one rebuild of it at a time, and the version of its code (migration 0010).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from domain.ports import RecordedEvent
from projections import orders_bulk, orders_projection, redis_relay, stats_projection
from projections.bulk_load import Builder
from projections.rebuild_errors import RebuildError

CatchUp = Callable[[AsyncConnection[Any], dict[str, str], list[RecordedEvent]], Any]


@dataclass(frozen=True)
class Projection:
    name: str
    tables: tuple[str, ...]  # live tables, swapped together
    builder: Callable[[], Builder]
    catch_up: CatchUp  # applies events to the shadow tables (live name -> shadow name)
    lock_key: int  # advisory lock: one rebuild of this projection at a time
    version: int  # of its code; the swap records it with the checkpoint


PROJECTIONS: dict[str, Projection] = {
    p.name: p
    for p in (
        Projection(
            orders_projection.NAME,
            (orders_bulk.TABLE,),
            orders_bulk.OrdersBuilder,
            orders_bulk.catch_up,
            0x6F65_7262_01,
            orders_projection.VERSION,
        ),
        Projection(
            stats_projection.NAME,
            tuple(stats_projection.TABLES),
            stats_projection.StatsBuilder,
            stats_projection.catch_up,
            0x6F65_7262_02,
            stats_projection.VERSION,
        ),
    )
}

# Every log follower `status` reports on; the relay has no table to rebuild.
FOLLOWERS = (*PROJECTIONS, redis_relay.NAME)


class UnknownProjection(RebuildError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown projection {name!r}: choose from {', '.join(PROJECTIONS)}")


def choose(name: str | Sequence[str] | None) -> list[Projection]:
    """The projections `name` means (a name, several, or None: all); UnknownProjection otherwise."""
    if name is None:
        return list(PROJECTIONS.values())
    names = [name] if isinstance(name, str) else list(name)
    for n in names:
        if n not in PROJECTIONS:
            raise UnknownProjection(n)
    return [PROJECTIONS[n] for n in names]

"""Wire types (and their examples) of the endpoints the dashboard needs that the API had not
got: the engine's health in one read (`GET /api/engine/health`) and an order's state at a
version of its stream (`GET /api/orders/{id}/state`). Kept beside api/schemas.py, in the
same style: camelCase msgspec Structs that the handlers return, so /schema documents
exactly what is encoded."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from api.schema_examples import ORDER_VIEW_EXAMPLE
from api.schemas import ORDER_ID, OrderId, OrderView, ProjectionLag, Timestamp

# --- engine health ----------------------------------------------------------------------


class QueueDepth(msgspec.Struct, kw_only=True):
    """One Dramatiq queue's messages, as `orderengine_queue_depth` reports them."""

    ready: Annotated[int, Meta(description="Enqueued, not yet fetched by a worker")]
    unacked: Annotated[int, Meta(description="Fetched by a worker: running or prefetched")]
    delayed: Annotated[int, Meta(description="Retries and deferrals waiting for their time")]
    dead: Annotated[int, Meta(description="Dead-lettered")]


class Heartbeat(msgspec.Struct, kw_only=True):
    """One engine process's last heartbeat (they expire after three missed beats)."""

    process: Annotated[str, Meta(description="`scheduler`, or `worker:<pid>`")]
    ageSeconds: Annotated[float, Meta(description="Seconds since its last beat")]


class EngineHealth(msgspec.Struct, kw_only=True):
    """The engine's load against its limits, its queues, its log followers' lag and its
    processes' heartbeats, read now from the same sources as `/readyz` and `/metrics`."""

    checkedAt: Timestamp
    market: Annotated[
        Literal["mock", "chain"],
        Meta(description="Where quotes and swaps come from: the mock DEX or the chain (USE_REAL_DEVNET)"),
    ]
    inFlight: Annotated[int, Meta(description="Orders holding an execution slot now")]
    maxInFlight: Annotated[int, Meta(description="QUEUE_MAX_CONCURRENT: the deployment-wide limit")]
    startsLastMinute: Annotated[int, Meta(description="Orders that took a slot in the last 60 s")]
    startsPerMinute: Annotated[int, Meta(description="ORDER_PROCESSOR_RATE: the start-rate limit")]
    queues: Annotated[dict[str, QueueDepth], Meta(description="Per Dramatiq queue (orders, priority lane)")]
    openOrders: Annotated[dict[str, int], Meta(description="Orders not yet ended, by status (read model)")]
    lag: Annotated[
        dict[str, ProjectionLag],
        Meta(description="Per log follower: the `redis_relay` outbox and the `orders`, `stats` projections"),
    ]
    workers: Annotated[list[Heartbeat], Meta(description="Every worker process with a live heartbeat")]
    scheduler: Annotated[Heartbeat | None, Meta(description="The scheduler's heartbeat; null if none")]


# --- an order's state at a version ------------------------------------------------------


class OrderStateAt(msgspec.Struct, kw_only=True):
    """The order folded from its first `version` events by the engine's own `fold` (what
    `orderengine replay --to-version` prints), with the event that version records."""

    orderId: OrderId
    version: Annotated[int, Meta(description="The version the state was folded up to")]
    latestVersion: Annotated[int, Meta(description="The order's newest version in the log")]
    eventType: Annotated[str, Meta(description="The type of the event at `version`")]
    recordedAt: Timestamp
    order: OrderView


# --- examples ---------------------------------------------------------------------------

_LAG = {"events": 0, "seconds": 0.0}
HEALTH_EXAMPLE: dict[str, Any] = {
    "checkedAt": "2026-11-24T12:00:03.250000+00:00",
    "market": "mock",
    "inFlight": 3,
    "maxInFlight": 10,
    "startsLastMinute": 42,
    "startsPerMinute": 100,
    "queues": {
        "orders": {"ready": 2, "unacked": 3, "delayed": 1, "dead": 0},
        "orders_priority": {"ready": 0, "unacked": 0, "delayed": 0, "dead": 0},
    },
    "openOrders": {"pending": 2, "waiting": 1, "routing": 1, "building": 0, "submitted": 2},
    "lag": {"orders": _LAG, "stats": _LAG, "redis_relay": {"events": 2, "seconds": 0.004}},
    "workers": [{"process": "worker:4182", "ageSeconds": 0.8}],
    "scheduler": {"process": "scheduler", "ageSeconds": 1.2},
}
STATE_EXAMPLE: dict[str, Any] = {
    "orderId": ORDER_ID,
    "version": 2,
    "latestVersion": 5,
    "eventType": "OrderRouting",
    "recordedAt": "2026-11-24T12:00:00.400000+00:00",
    "order": {
        **ORDER_VIEW_EXAMPLE,
        "status": "routing",
        "updatedAt": "2026-11-24T12:00:00.400000+00:00",
        "version": 2,
        "minOut": None,
        "executedPrice": None,
        "amountOut": None,
        "txHash": None,
        "explorerUrl": None,
    },
}


# --- who the key names --------------------------------------------------------------------


class CallerView(msgspec.Struct, kw_only=True):
    """Who the request's key names, so a client (the dashboard) knows what it may show."""

    role: Annotated[
        Literal["user", "operator", "open"],
        Meta(
            description="`user`: a user's key (its own orders only); `operator`: an operator key "
            "(every order, `/ws?all=true`); `open`: no keys are configured (anyone may do what an "
            "operator may)"
        ),
    ]
    userId: Annotated[str | None, Meta(description="The key's user; null for an operator or an open API")]


CALLER_EXAMPLE: dict[str, Any] = {"role": "operator", "userId": None}

"""The API's wire types (api/openapi_docs.py documents the endpoints with them; their
examples are in api/schema_examples.py).

Success and error bodies are msgspec Structs that the handlers return, so Litestar
documents exactly what it encodes. Inputs the handlers decode by hand (so that an
error names the field: bodies, the list query, the Idempotency-Key header) are
documented from the same msgspec types that decode them, through msgspec's own
JSON Schema generator: `documented(...)` adds them to the operation. Field names
are camelCase, as the API has always sent them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

import msgspec
from msgspec import UNSET, Meta, UnsetType

from api.order_request import OrderStatus

# --- scalar wire types --------------------------------------------------------------

DecimalText = Annotated[
    str, Meta(description="A decimal number as a string, so no precision is lost", examples=["1.5"])
]
Timestamp = Annotated[
    str,
    Meta(description="An ISO 8601 timestamp with its UTC offset", examples=["2026-11-24T12:00:00.5+00:00"]),
]
ORDER_ID = "0b7c6f0e-5d2a-4c55-9a53-5c1c0b1e2f3a"
OrderId = Annotated[str, Meta(description="The order's id (a UUID)", examples=[ORDER_ID])]
OrderType = Literal["market", "limit", "sniper"]

# --- success bodies -----------------------------------------------------------------


class OrderAccepted(msgspec.Struct, kw_only=True):
    """`POST /api/orders/execute`: the order is stored as `pending` in the log."""

    orderId: OrderId
    status: OrderStatus
    message: str
    streamUrl: Annotated[str, Meta(description="WebSocket URL streaming the order's progress")]


class QuoteView(msgspec.Struct, kw_only=True):
    """One DEX's quote for the order's size."""

    dex: str
    price: DecimalText
    fee: DecimalText
    liquidity: DecimalText
    expectedOut: DecimalText


class OrderView(msgspec.Struct, kw_only=True):
    """An order as the read model holds it (projections/order_views.py); null where not yet known."""

    orderId: OrderId
    userId: str
    orderType: OrderType
    tokenIn: str
    tokenOut: str
    amount: DecimalText
    limitPrice: DecimalText | None
    slippageTolerance: DecimalText
    status: OrderStatus
    createdAt: Timestamp
    updatedAt: Timestamp
    attempts: int
    lastError: str | None
    chosenDex: str | None
    chosenQuote: QuoteView | None
    quotes: list[QuoteView] | None
    expectedOut: DecimalText | None
    minOut: DecimalText | None
    executedPrice: DecimalText | None
    amountOut: DecimalText | None
    txHash: str | None
    version: int
    expiresAt: Timestamp | None
    bestPrice: DecimalText | None
    explorerUrl: Annotated[
        str | None, Meta(description="Where the venue says the transaction can be looked up, once submitted")
    ]
    cancelReason: str | None
    cancelledBy: Annotated[str | None, Meta(description="Who cancelled it: the user, or the API key's user")]


class OrderPage(msgspec.Struct, kw_only=True):
    """`GET /api/orders`: newest first."""

    orders: list[OrderView]
    nextCursor: Annotated[
        str | None, Meta(description="Pass as `cursor` for the next page; null on the last")
    ]


class EventMetadataView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why the event was written (domain.ports.EventMetadata; unset fields are left out)."""

    correlation_id: str
    causation_id: str
    actor: str
    attempt: int | None = None
    issued_at: Timestamp | None = None


class RecordedEventView(msgspec.Struct, kw_only=True):
    position: Annotated[int, Meta(description="Global position in the log")]
    version: Annotated[int, Meta(description="Position in the order's own stream, from 1")]
    type: Annotated[str, Meta(description="The event type (domain/events.py), e.g. OrderConfirmed")]
    recordedAt: Timestamp
    data: Annotated[
        dict[str, Any],
        Meta(description="The event's fields as stored (snake_case, decimals as strings) and its `type` tag"),
    ]
    metadata: EventMetadataView


class OrderEvents(msgspec.Struct, kw_only=True):
    """`GET /api/orders/{order_id}/events`: the order's events from the log, in order."""

    orderId: OrderId
    events: list[RecordedEventView]


class CancelResult(msgspec.Struct, kw_only=True):
    orderId: OrderId
    status: OrderStatus
    message: str


# Token symbol -> USD price (the mock market's).
MarketPrices = dict[str, DecimalText]


class LaunchResult(msgspec.Struct, kw_only=True):
    token: str
    launched: Annotated[bool, Meta(description="False when the token had launched already")]
    ordersWoken: Annotated[int, Meta(description="Waiting sniper orders sent to routing")]


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok"]


class Readiness(msgspec.Struct, kw_only=True):
    """`/readyz`: each dependency's check; `down` lists the failing ones (503 only)."""

    status: Literal["ready", "unavailable"]
    checks: Annotated[
        dict[str, str],
        Meta(
            description='"ok", or why not: postgres, redis, scheduler, worker, '
            "projections (a stalled log follower)"
        ),
    ]
    down: list[str] | UnsetType = UNSET
    lag: (
        Annotated[
            dict[str, ProjectionLag],
            Meta(description="Per log follower (orders, stats, redis_relay): how far behind the log it is"),
        ]
        | UnsetType
    ) = UNSET


class ProjectionLag(msgspec.Struct, kw_only=True):
    """How far one log follower is behind the log (projections/follower_status.py)."""

    events: Annotated[int, Meta(description="Events in the log after its checkpoint")]
    seconds: Annotated[float, Meta(description="Age of the oldest of them; 0 when caught up")]


class StatusCounts(msgspec.Struct, kw_only=True):
    """Orders in each status."""

    pending: int
    waiting: int
    routing: int
    building: int
    submitted: int
    confirmed: int
    failed: int
    cancelled: int
    expired: int


SuccessRate = Annotated[
    float | None,
    Meta(description="confirmed / (confirmed + failed); null until an order is confirmed or fails"),
]
AvgExecutionSeconds = Annotated[
    float | None,
    Meta(
        description="Mean seconds from pending to confirmed (the log's timestamps); "
        "null until one is confirmed"
    ),
]


class PairStats(msgspec.Struct, kw_only=True):
    """One token pair's orders: counts, volumes, success rate, execution time."""

    tokenIn: str
    tokenOut: str
    orders: int
    byStatus: StatusCounts
    successRate: SuccessRate
    avgExecutionSeconds: AvgExecutionSeconds
    requestedVolumeIn: Annotated[str, Meta(description="tokenIn of every order, whatever its status")]
    executedVolumeIn: Annotated[str, Meta(description="tokenIn of the confirmed orders")]
    executedVolumeOut: Annotated[str, Meta(description="tokenOut the confirmed orders received")]


class UserStats(msgspec.Struct, kw_only=True):
    """`GET /api/stats/users/{userId}`: the user's totals (no volume: pairs trade different
    tokens) and each pair they traded."""

    userId: str
    orders: int
    byStatus: StatusCounts
    successRate: SuccessRate
    avgExecutionSeconds: AvgExecutionSeconds
    pairs: list[PairStats]


class PairStatsList(msgspec.Struct, kw_only=True):
    """`GET /api/stats/pairs`: every pair traded, over all users, sorted by pair."""

    pairs: list[PairStats]


# --- error bodies -------------------------------------------------------------------


class ErrorDetail(msgspec.Struct, kw_only=True):
    code: Annotated[str, Meta(description="Machine-readable: malformed_json, invalid_field, not_found, …")]
    message: str
    field: Annotated[str, Meta(description="The input to blame, when one is")] | UnsetType = UNSET
    status: Annotated[OrderStatus, Meta(description="409 only: where the order stands")] | UnsetType = UNSET


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error: `{"error": {"code", "message", "field"?, "status"?}}`."""

    error: ErrorDetail


def error_body(code: str, message: str, field: str | None = None, status: str | None = None) -> ErrorBody:
    return ErrorBody(
        error=ErrorDetail(
            code=code,
            message=message,
            field=UNSET if field is None else field,
            status=UNSET if status is None else cast(OrderStatus, status),
        )
    )

"""The API's wire types and their examples (api/openapi_docs.py documents the endpoints with them).

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


# --- examples -----------------------------------------------------------------------

MARKET_ORDER = {
    "userId": "user-1",
    "orderType": "market",
    "tokenIn": "SOL",
    "tokenOut": "USDC",
    "amount": "1.5",
}
LIMIT_ORDER = {**MARKET_ORDER, "orderType": "limit", "limitPrice": "155.5", "slippageTolerance": "0.02"}
SNIPER_ORDER = {**MARKET_ORDER, "orderType": "sniper", "tokenOut": "LAUNCH", "clientOrderId": "snipe-42"}
ORDER_EXAMPLES = {"market": MARKET_ORDER, "limit": LIMIT_ORDER, "sniper": SNIPER_ORDER}
PRICES_EXAMPLES = {"prices": {"SOL": "160", "USDC": "1"}}
LAUNCH_EXAMPLES = {"launch": {"token": "LAUNCH"}}

_QUOTE = {"dex": "raydium", "price": "150.2", "fee": "0.0025", "liquidity": "1000000", "expectedOut": "224.7"}
ORDER_VIEW_EXAMPLE: dict[str, Any] = {
    "orderId": ORDER_ID,
    "userId": "user-1",
    "orderType": "market",
    "tokenIn": "SOL",
    "tokenOut": "USDC",
    "amount": "1.5",
    "limitPrice": None,
    "slippageTolerance": "0.01",
    "status": "confirmed",
    "createdAt": "2026-11-24T12:00:00.100000+00:00",
    "updatedAt": "2026-11-24T12:00:02.900000+00:00",
    "attempts": 0,
    "lastError": None,
    "chosenDex": "raydium",
    "chosenQuote": _QUOTE,
    "quotes": [_QUOTE, {**_QUOTE, "dex": "meteora", "price": "149.9", "expectedOut": "224.2"}],
    "expectedOut": "224.7",
    "minOut": "222.45",
    "executedPrice": "150.1",
    "amountOut": "224.6",
    "txHash": "5Yq…",
    "version": 5,
    "expiresAt": None,
    "bestPrice": None,
    "explorerUrl": "https://explorer.solana.com/tx/5Yq…?cluster=devnet",
    "cancelReason": None,
    "cancelledBy": None,
}
# From a running engine (`docs/api.md`): six SOL→USDC orders (one waiting for its limit price,
# one cancelled, one failed) and one USDC→SOL.
_STATUS_COUNTS = dict.fromkeys(StatusCounts.__struct_fields__, 0)
PAIR_STATS_EXAMPLE: dict[str, Any] = {
    "tokenIn": "SOL",
    "tokenOut": "USDC",
    "orders": 6,
    "byStatus": {**_STATUS_COUNTS, "waiting": 1, "confirmed": 3, "failed": 1, "cancelled": 1},
    "successRate": 0.75,
    "avgExecutionSeconds": 2.666679,
    "requestedVolumeIn": "12",
    "executedVolumeIn": "6.5",
    "executedVolumeOut": "978.293292410826",
}
USER_STATS_EXAMPLE: dict[str, Any] = {
    "userId": "user-1",
    "orders": 7,
    "byStatus": {**_STATUS_COUNTS, "waiting": 1, "confirmed": 4, "failed": 1, "cancelled": 1},
    "successRate": 0.8,
    "avgExecutionSeconds": 2.67910475,
    "pairs": [
        PAIR_STATS_EXAMPLE,
        {
            "tokenIn": "USDC",
            "tokenOut": "SOL",
            "orders": 1,
            "byStatus": {**_STATUS_COUNTS, "confirmed": 1},
            "successRate": 1.0,
            "avgExecutionSeconds": 2.716382,
            "requestedVolumeIn": "100",
            "executedVolumeIn": "100",
            "executedVolumeOut": "0.664912181926",
        },
    ],
}
# Examples are Structs, not dicts: Litestar drops None values from dicts in the document,
# and an example must show the nulls a client will see.
SUCCESS_EXAMPLES: dict[str, Any] = {
    "accepted": OrderAccepted(
        orderId=ORDER_ID,
        status="pending",
        message="Order accepted; stream its progress from streamUrl",
        streamUrl=f"/ws?orderId={ORDER_ID}",
    ),
    "order": msgspec.convert(ORDER_VIEW_EXAMPLE, OrderView),
    "page": OrderPage(orders=[msgspec.convert(ORDER_VIEW_EXAMPLE, OrderView)], nextCursor=None),
    "events": OrderEvents(
        orderId=ORDER_ID,
        events=[
            RecordedEventView(
                position=1041,
                version=1,
                type="OrderPending",
                recordedAt="2026-11-24T12:00:00.100000+00:00",
                data={"type": "OrderPending", "order_id": ORDER_ID, "user_id": "user-1", "amount": "1.5"},
                metadata=EventMetadataView(correlation_id=ORDER_ID, causation_id=ORDER_ID, actor="api"),
            )
        ],
    ),
    "cancelled": CancelResult(orderId=ORDER_ID, status="cancelled", message="Order cancelled"),
    "user_stats": msgspec.convert(USER_STATS_EXAMPLE, UserStats),
    "pairs_stats": msgspec.convert({"pairs": USER_STATS_EXAMPLE["pairs"]}, PairStatsList),
    "pair_stats": msgspec.convert(PAIR_STATS_EXAMPLE, PairStats),
    "prices": {"SOL": "150", "USDC": "1", "BONK": "0.00002"},
    "launch": LaunchResult(token="LAUNCH", launched=True, ordersWoken=2),
    "health": Health(status="ok"),
    "ready": Readiness(
        status="ready",
        checks={"postgres": "ok", "projections": "ok", "redis": "ok", "scheduler": "ok", "worker": "ok"},
        lag={
            "orders": ProjectionLag(events=0, seconds=0.0),
            "stats": ProjectionLag(events=0, seconds=0.0),
            "redis_relay": ProjectionLag(events=0, seconds=0.0),
        },
    ),
    "unready": Readiness(
        status="unavailable",
        checks={
            "postgres": "ok",
            "projections": "ok",
            "redis": "ok",
            "scheduler": "ok",
            "worker": "no heartbeat",
        },
        down=["worker"],
        lag={
            "orders": ProjectionLag(events=3, seconds=0.012),
            "stats": ProjectionLag(events=3, seconds=0.012),
            "redis_relay": ProjectionLag(events=0, seconds=0.0),
        },
    ),
}

# One example per error status: (description, body).
ERROR_EXAMPLES: dict[int, tuple[str, ErrorBody]] = {
    400: ("The body is not JSON", error_body("malformed_json", "malformed JSON: Input data was truncated")),
    401: (
        "API_KEYS is set and the Authorization header is missing or names no key",
        error_body(
            "unauthorized",
            "missing or unknown API key: send Authorization: Bearer <key>",
            field="Authorization",
        ),
    ),
    403: (
        "The API key may not ask this",
        error_body("forbidden", "an API key lists only its own user's orders", field="userId"),
    ),
    404: (
        "No such order (or it belongs to another API key's user)",
        error_body("not_found", f"order {ORDER_ID} does not exist"),
    ),
    409: (
        "The order's state does not allow it; `status` says where it stands",
        error_body("conflict", "cannot cancel an order that is confirmed", status="confirmed"),
    ),
    413: ("The body is over 64 KiB", error_body("payload_too_large", "Request Entity Too Large")),
    422: (
        "A value fails validation; `field` names it",
        error_body("invalid_field", "Expected `decimal`, got `bool` - at `amount`", field="amount"),
    ),
    429: (
        "The user places orders faster than ORDER_RATE_PER_MIN allows; retry after Retry-After seconds",
        error_body("rate_limited", "too many orders: retry in 0.8 s"),
    ),
    503: (
        "Postgres or Redis is unavailable; retry shortly",
        error_body("unavailable", "a backing service (Postgres or Redis) is unavailable; retry shortly"),
    ),
}

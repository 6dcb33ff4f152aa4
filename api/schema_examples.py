"""Examples of the API's bodies for its OpenAPI document (api/openapi_docs.py): requests,
one per success body, one per error status. Taken from a running engine (docs/api.md).

Apart from api/schemas.py, which declares the wire types themselves; tests/unit/
test_openapi.py checks that every example decodes into its type unchanged.
"""

from __future__ import annotations

from typing import Any

import msgspec

from api.schemas import (
    ORDER_ID,
    CancelResult,
    ErrorBody,
    EventMetadataView,
    Health,
    LaunchResult,
    OrderAccepted,
    OrderEvents,
    OrderPage,
    OrderView,
    PairStats,
    PairStatsList,
    ProjectionLag,
    Readiness,
    RecordedEventView,
    StatusCounts,
    UserStats,
    error_body,
)

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

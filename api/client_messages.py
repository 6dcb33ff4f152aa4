"""What clients receive: one message per order event, in the brief's shape.

`{"orderId", "status", "timestamp", "details", "version", "type"}` where `status`
is the lifecycle status the event records (`retrying` for a scheduled retry) and
`details` carries the event's facts in camelCase.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from domain.events import (
    Event,
    OrderAwaitingLaunch,
    OrderBuilding,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderFailed,
    OrderPending,
    OrderRouting,
    OrderSubmitted,
    OrderWaiting,
    Quote,
    RetryScheduled,
    SwapRequested,
)
from domain.order import status_of


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def quote_details(q: Quote) -> dict[str, Any]:
    return {
        "dex": q.dex,
        "price": _num(q.price),
        "fee": _num(q.fee),
        "liquidity": _num(q.liquidity),
        "expectedOut": _num(q.expected_out),
    }


def event_details(event: Event) -> dict[str, Any]:
    match event:
        case OrderPending():
            return {
                "userId": event.user_id,
                "orderType": event.order_type,
                "tokenIn": event.token_in,
                "tokenOut": event.token_out,
                "amount": _num(event.amount),
                "limitPrice": _num(event.limit_price),
                "slippageTolerance": _num(event.slippage_tolerance),
                "expiresAt": event.expires_at.isoformat() if event.expires_at else None,
            }
        case OrderWaiting():
            return {
                "bestDex": event.best_dex,
                "bestPrice": _num(event.best_price),
                "limitPrice": _num(event.limit_price),
            }
        case OrderAwaitingLaunch():
            return {"token": event.token}
        case OrderCancelled():
            return {"reason": event.reason, "by": event.by}
        case OrderExpired():
            return {"expiresAt": event.expires_at.isoformat()}
        case OrderRouting():
            return {
                "quotes": [quote_details(q) for q in event.quotes],
                "chosenDex": event.chosen_dex,
                "expectedOut": _num(event.expected_out),
                "reason": event.reason,
            }
        case OrderBuilding():
            return {
                "dex": event.dex,
                "expectedOut": _num(event.expected_out),
                "minOut": _num(event.min_out),
                "actions": event.actions,
                "quote": quote_details(event.quote) if event.quote else None,
            }
        case OrderSubmitted():
            return {"dex": event.dex, "txHash": event.tx_hash, "explorerUrl": event.explorer_url}
        case SwapRequested():
            return {"dex": event.dex}
        case OrderConfirmed():
            return {
                "txHash": event.tx_hash,
                "executedPrice": _num(event.executed_price),
                "amountOut": _num(event.amount_out),
            }
        case RetryScheduled():
            return {
                "step": event.step,
                "attempt": event.attempt,
                "error": event.error,
                "retryInMs": event.delay_ms,
            }
        case OrderFailed():
            return {"step": event.step, "error": event.error, "attempts": event.attempts}
    return msgspec.to_builtins(event)  # type: ignore[no-any-return]


def client_message(order_id: str, version: int, event: Event, timestamp: str) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "status": status_of(event) or "retrying",
        "timestamp": timestamp,
        "details": event_details(event),
        "version": version,
        "type": type(event).__name__,
    }

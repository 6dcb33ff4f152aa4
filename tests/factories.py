"""Builders for commands and events used across test layers."""

from __future__ import annotations

import uuid
from decimal import Decimal

from domain.commands import PlaceOrder
from domain.events import OrderPending, Quote


def new_order_id() -> str:
    return str(uuid.uuid4())


def place_order(order_id: str | None = None, **overrides: object) -> PlaceOrder:
    oid = order_id or new_order_id()
    fields: dict[str, object] = {
        "command_id": f"{oid}:place",
        "order_id": oid,
        "user_id": "user-1",
        "order_type": "market",
        "token_in": "SOL",
        "token_out": "USDC",
        "amount": Decimal("1.5"),
        "slippage_tolerance": Decimal("0.01"),
    }
    fields.update(overrides)
    return PlaceOrder(**fields)  # type: ignore[arg-type]


def pending_event(order_id: str) -> OrderPending:
    return OrderPending(
        order_id=order_id,
        user_id="user-1",
        order_type="market",
        token_in="SOL",
        token_out="USDC",
        amount=Decimal("1.5"),
        slippage_tolerance=Decimal("0.01"),
    )


def quotes(raydium: str = "150", meteora: str = "149") -> list[Quote]:
    return [
        Quote(dex="raydium", price=Decimal(raydium), fee=Decimal("0.003"), liquidity=Decimal(50_000)),
        Quote(dex="meteora", price=Decimal(meteora), fee=Decimal("0.002"), liquidity=Decimal(40_000)),
    ]

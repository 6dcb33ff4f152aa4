"""The Litestar application: HTTP command API, order reads, WebSocket streams.

`create_app()` builds everything from settings; pools are opened in the
lifespan and kept on `app.state`, so importing this module connects to nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import msgspec
import psycopg
import redis as sync_redis
import redis.exceptions
from litestar import Litestar, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.handlers import websocket

from adapters.bootstrap import make_pool, make_redis, require_urls
from adapters.market import RedisMarket
from adapters.postgres_event_store import PostgresEventStore
from adapters.settings import Settings, load_settings
from api.order_request import RequestError, parse_launch_request, parse_market_prices, parse_order_request
from api.order_stream import stream_order
from domain.commands import CancelOrder, PlaceOrder
from domain.errors import DomainError, InvalidTransition, OrderNotFound
from domain.events import OrderPending
from domain.handling import handle
from domain.order import TRANSITIONS
from projections.order_views import decode_cursor, find_order, list_orders
from workers.actors import OrderActors
from workers.broker import make_broker
from workers.limit_jobs import LimitOrderJobs, launch_token

log = logging.getLogger("orderengine.api")


def _error(status: int, code: str, message: str, field: str | None = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return Response({"error": body}, status_code=status)


def _request_error(_: Request[Any, Any, Any], exc: RequestError) -> Response[Any]:
    # 400 when the body is not JSON at all; 422 when it is but a value fails validation.
    return _error(400 if exc.code == "malformed_json" else 422, exc.code, exc.message, exc.field)


def _not_found(_: Request[Any, Any, Any], exc: OrderNotFound) -> Response[Any]:
    return _error(404, "not_found", str(exc))


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    response = _error(409, "conflict", str(exc))
    status = getattr(exc, "status", None)
    if status is not None:  # where the order stands, so the client need not ask again
        response.content["error"]["status"] = status
    return response


def _unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("dependency unavailable: %s", exc)
    return _error(503, "unavailable", "a backing service (Postgres or Redis) is unavailable; retry shortly")


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return _error(exc.status_code, "http_error", exc.detail)


def _internal(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error")
    return _error(500, "internal", "internal error")


# An order is a few hundred bytes; anything far larger is refused with 413 unread.
MAX_BODY_BYTES = 64 * 1024

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1b8a2e-3c4d-4e5f-9a0b-1c2d3e4f5a6b")


class IdempotencyKeyReused(DomainError):
    def __init__(self, status: str) -> None:
        super().__init__("this idempotency key already names a different order")
        self.status = status


def _same_order(stored: object, command: PlaceOrder) -> bool:
    """The stored order is the one requested (its default expiry may differ between retries)."""
    if not isinstance(stored, OrderPending):
        return False
    fields = ("user_id", "order_type", "token_in", "token_out", "amount", "limit_price", "slippage_tolerance")
    return all(getattr(stored, f) == getattr(command, f) for f in fields)


def parse_order_id(raw: str) -> str:
    """Order ids are UUIDs; anything else cannot name an order."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise OrderNotFound(raw) from None


@post("/api/orders/execute", status_code=200)
async def execute_order(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Accept an order: stored as `pending` in the log before this answers."""
    settings: Settings = state.settings
    body = parse_order_request(
        await request.body(),
        max_slippage=settings.max_slippage,
        default_slippage=settings.default_slippage,
        now=datetime.now(UTC),
        default_ttl=timedelta(seconds=settings.limit_default_ttl_s),
        max_ttl=timedelta(seconds=settings.limit_max_ttl_s),
    )
    key = request.headers.get("idempotency-key") or body.clientOrderId
    if key is not None and not 1 <= len(key) <= 128:
        raise RequestError("Idempotency-Key must be 1 to 128 characters", field="Idempotency-Key")
    # With a key the order id is derived from (user, key): a retry, even a concurrent one,
    # names the same order, and the log's command idempotency stores it once.
    order_id = str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{body.userId}\x00{key}") if key else uuid.uuid4())
    is_new = key is None or not await state.store.stream_exists(order_id)
    command = PlaceOrder(
        command_id=order_id,
        order_id=order_id,
        user_id=body.userId,
        order_type=body.orderType,
        token_in=body.tokenIn,
        token_out=body.tokenOut,
        amount=body.amount,
        limit_price=body.limitPrice,
        expires_at=body.expiresAt,
        slippage_tolerance=body.slippageTolerance
        if body.slippageTolerance is not None
        else settings.default_slippage,
    )
    order, recorded = await handle(state.store, order_id, command, actor="api", issued_at=datetime.now(UTC))
    if key is not None and not _same_order(recorded[0].event, command):
        raise IdempotencyKeyReused(order.status)
    if is_new:
        actors: OrderActors = state.actors
        await anyio.to_thread.run_sync(
            partial(actors.send, "route", order_id, priority=body.orderType == "sniper")
        )
    log.info(
        "order accepted",
        extra={"orderId": order_id, "userId": body.userId, "orderType": body.orderType, "step": "pending"},
    )
    return {
        "orderId": order_id,
        "status": order.status,
        "message": "Order accepted; stream its progress from streamUrl"
        if is_new
        else "Order already accepted under this idempotency key",
        "streamUrl": f"/ws?orderId={order_id}",
    }


@get(["/api/orders/{order_id:str}", "/orders/{order_id:str}"])
async def get_order(order_id: str, state: State) -> dict[str, Any]:
    """The order from the read model (or folded from the log if the projection lags)."""
    order = await find_order(state.pool, state.store, parse_order_id(order_id))
    if order is None:
        raise OrderNotFound(order_id)
    return order


ORDER_STATUSES = frozenset(TRANSITIONS) - {"new"}
MAX_PAGE = 200


@get("/api/orders")
async def list_orders_handler(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Orders newest first: `?userId=&status=&limit=&cursor=`; `nextCursor` is null on the last page."""
    query = request.query_params
    status = query.get("status")
    if status is not None and status not in ORDER_STATUSES:
        raise RequestError(f"status must be one of {', '.join(sorted(ORDER_STATUSES))}", field="status")
    raw_limit = query.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise RequestError(f"limit must be a whole number from 1 to {MAX_PAGE}", field="limit")
    cursor = query.get("cursor")
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise RequestError(str(exc), field="cursor") from None
    orders, next_cursor = await list_orders(
        state.pool, user_id=query.get("userId"), status=status, limit=int(raw_limit), after=after
    )
    return {"orders": orders, "nextCursor": next_cursor}


@get("/api/orders/{order_id:str}/events")
async def order_events(order_id: str, state: State) -> dict[str, Any]:
    """The order's events from the log, in order: what an auditor replays."""
    oid = parse_order_id(order_id)
    history = await state.store.read_stream(oid)
    if not history:
        raise OrderNotFound(order_id)
    return {
        "orderId": oid,
        "events": [
            {
                "position": r.position,
                "version": r.version,
                "type": r.type,
                "recordedAt": r.recorded_at.isoformat(),
                "data": msgspec.to_builtins(r.event),
                "metadata": msgspec.to_builtins(r.metadata),
            }
            for r in history
        ],
    }


@delete("/api/orders/{order_id:str}", status_code=200)
async def cancel_order(order_id: str, state: State) -> dict[str, Any]:
    """Cancel an order that has not started sending its swap; 409 with its status otherwise."""
    oid = parse_order_id(order_id)
    try:
        order, _ = await handle(
            state.store,
            oid,
            CancelOrder(command_id=f"{oid}:cancel"),
            actor="api",
            issued_at=datetime.now(UTC),
        )
    except InvalidTransition as exc:
        if exc.status == "new":
            raise OrderNotFound(oid) from None
        raise
    log.info("order cancelled", extra={"orderId": oid, "userId": order.user_id, "status": order.status})
    return {"orderId": oid, "status": order.status, "message": "Order cancelled"}


async def _current_prices(state: State) -> dict[str, str]:
    prices = await anyio.to_thread.run_sync(state.market.usd_prices)
    return {symbol: str(price) for symbol, price in prices.items()}


@get("/api/market/prices")
async def market_prices(state: State) -> dict[str, str]:
    """The mock market's current USD price of each token."""
    return await _current_prices(state)


@put("/api/market/prices", status_code=200)
async def set_market_prices(request: Request[Any, Any, Any], state: State) -> dict[str, str]:
    """Set USD prices in the mock market (operators and tests: a deterministic price path)."""
    prices = parse_market_prices(await request.body())
    await anyio.to_thread.run_sync(state.market.set_prices, prices)
    log.info("market prices set", extra={"prices": {k: str(v) for k, v in prices.items()}})
    return await _current_prices(state)


@post("/api/market/launches", status_code=200)
async def launch(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Launch a token in the mock market: its pools open and its sniper orders fire."""
    token = parse_launch_request(await request.body())
    launched, woken = await launch_token(state.market, state.waiting_jobs, token)
    return {"token": token, "launched": launched, "ordersWoken": woken}


@get("/healthz")
async def healthz() -> dict[str, str]:
    """The API process is up (no dependency is checked)."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(state: State) -> Response[Any]:
    """Postgres, Redis, a live worker and a live scheduler: 200, or 503 naming what is down."""
    checks: dict[str, str] = {}
    try:
        async with state.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"down: {type(exc).__name__}"
    try:
        prefix = state.settings.redis_prefix
        await state.redis.ping()
        checks["redis"] = "ok"
        checks["scheduler"] = (
            "ok" if await state.redis.exists(f"{prefix}:heartbeat:scheduler") else "no heartbeat"
        )
        workers = [k async for k in state.redis.scan_iter(match=f"{prefix}:heartbeat:worker:*", count=100)]
        checks["worker"] = "ok" if workers else "no heartbeat"
    except Exception as exc:
        checks.setdefault("redis", f"down: {type(exc).__name__}")
    down = sorted(name for name, result in checks.items() if result != "ok")
    body = {"status": "ready" if not down else "unavailable", "checks": checks}
    if down:
        body["down"] = down
    return Response(body, status_code=200 if not down else 503)


@websocket("/ws")
async def ws_order(socket: Any) -> None:
    await stream_order(socket, socket.app.state)


@websocket("/api/orders/{order_id:str}/stream")
async def ws_order_stream(socket: Any, order_id: str) -> None:
    await stream_order(socket, socket.app.state, order_id)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        _, redis_url = require_urls(settings)
        pool = make_pool(settings, min_size=2, max_size=10)
        await pool.open(wait=True)
        client = make_redis(settings)
        broker = make_broker(settings)
        app.state.update(
            settings=settings,
            pool=pool,
            redis=client,
            store=PostgresEventStore(pool.connection),
            actors=OrderActors(broker, settings),
            market=RedisMarket(sync_redis.Redis.from_url(redis_url), settings.redis_prefix),
        )
        actors: OrderActors = app.state.actors

        async def send_route(order_id: str, priority: bool) -> None:
            await anyio.to_thread.run_sync(partial(actors.send, "route", order_id, priority=priority))

        app.state.waiting_jobs = LimitOrderJobs(pool, app.state.store, send_route)
        try:
            yield
        finally:
            broker.close()
            await client.aclose()
            await pool.close()

    return Litestar(
        route_handlers=[
            execute_order,
            get_order,
            list_orders_handler,
            order_events,
            cancel_order,
            market_prices,
            set_market_prices,
            launch,
            healthz,
            readyz,
            ws_order,
            ws_order_stream,
        ],
        lifespan=[lifespan],
        exception_handlers={
            RequestError: _request_error,
            OrderNotFound: _not_found,
            DomainError: _domain_error,
            psycopg.OperationalError: _unavailable,
            redis.exceptions.ConnectionError: _unavailable,
            HTTPException: _http_error,
            Exception: _internal,
        },
        debug=False,
        logging_config=None,  # keep the process-wide logging set up by the CLI
        request_max_body_size=MAX_BODY_BYTES,
    )

"""The Litestar application: HTTP command API, order reads, WebSocket streams.

`create_app()` builds everything from settings; pools are opened in the
lifespan and kept on `app.state`, so importing this module connects to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
import redis as sync_redis
from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from adapters.bootstrap import make_pool, make_redis, require_urls
from adapters.market import RedisMarket
from adapters.postgres_event_store import PostgresEventStore
from adapters.redis_rate_limit import RateLimiter
from adapters.settings import Settings, load_settings
from api.auth import AuthMiddleware, KeyRing, warn_if_open
from api.connection_limits import ConnectionLimits
from api.errors import EXCEPTION_HANDLERS
from api.fanout import StreamHub
from api.health_routes import HEALTH_ROUTES
from api.market_routes import MARKET_ROUTES
from api.metrics_routes import METRICS_ROUTES, HttpMetricsMiddleware
from api.openapi_docs import COMPONENTS
from api.order_routes import MAX_BODY_BYTES, ORDER_ROUTES
from api.stats_routes import STATS_ROUTES
from api.ws_routes import WS_ROUTES
from workers.actors import OrderActors
from workers.broker import make_broker
from workers.limit_jobs import LimitOrderJobs


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    keys = KeyRing(settings.api_keys)
    warn_if_open(keys)

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
            order_rate=RateLimiter(
                client,
                settings.redis_prefix,
                "orders",
                per_minute=settings.order_rate_per_min,
                burst=settings.order_rate_burst,
            ),
        )
        actors: OrderActors = app.state.actors

        async def send_route(order_id: str, priority: bool) -> None:
            await anyio.to_thread.run_sync(partial(actors.send, "route", order_id, priority=priority))

        app.state.waiting_jobs = LimitOrderJobs(pool, app.state.store, send_route)
        app.state.ws_limits = ConnectionLimits(settings.ws_max_connections_per_user)
        # The shared reader gets its own client: its blocking XREAD must not queue behind requests.
        hub_client = make_redis(settings)
        app.state.hub = hub = StreamHub(hub_client, settings.redis_prefix)
        with contextlib.suppress(Exception):  # Redis down at start-up: the hub retries and resyncs
            await hub.start_position()
        hub_task = asyncio.get_running_loop().create_task(hub.run(), name="stream-hub")
        try:
            yield
        finally:
            hub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hub_task
            await hub_client.aclose()
            broker.close()
            await client.aclose()
            await pool.close()

    return Litestar(
        route_handlers=[
            *ORDER_ROUTES,
            *STATS_ROUTES,
            *MARKET_ROUTES,
            *HEALTH_ROUTES,
            *WS_ROUTES,
            *METRICS_ROUTES,
        ],
        lifespan=[lifespan],
        middleware=[HttpMetricsMiddleware(), AuthMiddleware(keys)],  # metrics first: it sees 401s too
        exception_handlers=EXCEPTION_HANDLERS,
        debug=False,
        logging_config=None,  # keep the process-wide logging set up by the CLI
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Solana order engine API",
            version="0.1.0",
            description="Place market, limit and sniper swaps on Solana DEXs (Raydium, Meteora) and follow "
            "them: every order is stored in an event log before it is accepted. Errors are "
            '`{"error": {"code", "message", "field"?}}`. WebSockets (not described here, see docs/api.md): '
            "`/ws?orderId=` and `/api/orders/{id}/stream` stream an order's events, `/ws?userId=` every "
            "order of a user, and `/api/orders/execute` takes an order and streams it on the same socket.",
            components=COMPONENTS,
            use_handler_docstrings=True,
        ),
    )

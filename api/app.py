"""The Litestar application: HTTP command API, order reads, WebSocket streams.

`create_app()` builds the engine from settings through the composition root
(adapters/bootstrap.py) and injects it into every handler as `api` (api/context.py);
its pool is opened in the lifespan, so importing this module connects to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from adapters.bootstrap import bootstrap
from adapters.settings import Settings, load_settings
from api.auth import AuthMiddleware, KeyRing, warn_if_open
from api.connection_limits import ConnectionLimits
from api.context import Api
from api.dashboard_routes import DASHBOARD_ROUTES
from api.errors import EXCEPTION_HANDLERS
from api.fanout import StreamHub
from api.health_routes import HEALTH_ROUTES
from api.market_routes import MARKET_ROUTES
from api.metrics_routes import METRICS_ROUTES, HttpMetricsMiddleware
from api.openapi_docs import COMPONENTS
from api.order_routes import MAX_BODY_BYTES, ORDER_ROUTES
from api.stats_routes import STATS_ROUTES
from api.ws_routes import WS_ROUTES


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    keys = KeyRing(settings.api_keys, settings.operator_keys)
    warn_if_open(keys)
    engine = bootstrap(settings, role="api", pool_min=2, pool_max=10)
    # The shared reader gets its own client: its blocking XREAD must not queue behind requests.
    hub = StreamHub(engine.blocking_redis(), engine.layout)
    api = Api(engine=engine, hub=hub, ws_limits=ConnectionLimits(settings.ws_max_connections_per_user))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await engine.open()
        with contextlib.suppress(Exception):  # Redis down at start-up: the hub retries and resyncs
            await hub.start_position()
        hub_task = asyncio.get_running_loop().create_task(hub.run(), name="stream-hub")
        try:
            yield
        finally:
            hub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hub_task
            await engine.close()

    def provide_api() -> Api:
        return api

    return Litestar(
        route_handlers=[
            *ORDER_ROUTES,
            *STATS_ROUTES,
            *MARKET_ROUTES,
            *HEALTH_ROUTES,
            *WS_ROUTES,
            *METRICS_ROUTES,
            *DASHBOARD_ROUTES,
        ],
        lifespan=[lifespan],
        dependencies={"api": Provide(provide_api, use_cache=True, sync_to_thread=False)},
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

"""`GET /metrics` (Prometheus exposition) and the middleware that times HTTP requests.

The process metrics come from adapters/metrics.py (every process's, in multiprocess
mode); the gauges for state kept in Postgres and Redis are read here at scrape time.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any, cast

import anyio
from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from prometheus_client.metrics_core import Metric

from adapters import metrics
from adapters.bootstrap import Engine
from adapters.redis_layout import QUEUES
from api.context import ApiDependency
from projections import orders_projection, redis_relay, stats_projection

log = logging.getLogger("orderengine.metrics")


async def _postgres_readings(engine: Engine) -> list[Metric]:
    projections = [orders_projection.NAME, stats_projection.NAME]
    pool = engine.database.pool
    lag = await metrics.read_follower_lag(pool, [redis_relay.NAME, *projections])
    open_orders = await metrics.read_open_orders(pool)
    return [
        *metrics.lag_families(lag, outbox=redis_relay.NAME, projections=projections),
        *metrics.open_order_families(open_orders),
    ]


async def _redis_readings(engine: Engine) -> list[Metric]:
    depths = await metrics.read_queue_depths(engine.redis, engine.layout.dramatiq_namespace, list(QUEUES))
    return [*metrics.queue_families(depths), *metrics.slot_families(await engine.slots.in_flight())]


async def scrape_readings(engine: Engine) -> list[Metric]:
    """The scrape-time gauges; a source that cannot be read is reported down, not a 500,
    so the process metrics still arrive while Postgres or Redis is out."""
    families: list[Metric] = []
    up: dict[str, bool] = {}
    for source, read in (("postgres", _postgres_readings), ("redis", _redis_readings)):
        try:
            with anyio.fail_after(5):
                families.extend(await read(engine))
            up[source] = True
        except Exception:
            log.warning("metrics: reading %s failed", source, exc_info=True)
            up[source] = False
    return [*families, *metrics.source_families(up)]


@get("/metrics", include_in_schema=False)
async def metrics_handler(request: Request[Any, Any, Any], api: ApiDependency) -> Response[bytes]:
    """Every engine process's metrics plus the gauges read now, in Prometheus text format."""
    families = await scrape_readings(api.engine)
    # Reading the processes' files is blocking file I/O: off the event loop.
    body, content_type = await anyio.to_thread.run_sync(
        partial(metrics.render, families, accept=request.headers.get("accept", ""))
    )
    # As a header, not media_type: Litestar would append a second charset to a text/ type.
    return Response(content=body, headers={"content-type": content_type})


METRICS_ROUTES = [metrics_handler]


class HttpMetricsMiddleware(ASGIMiddleware):
    """Counts and times each HTTP request by method, route template and status.

    The route template (`/api/orders/{order_id}`), never the raw path, keeps the
    label set bounded. Put it first in `middleware=` so it also sees the answers of the
    middleware after it (401, 429). Requests that match no route (404, 405) are answered
    by the router before any middleware runs, so they are not counted here.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        status = 500  # if the app fails before it answers, the server answers 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, send_and_note_status)
        finally:
            route = scope.get("path_template") or "unmatched"
            method = cast("HTTPScope", scope)["method"]  # `scopes` lets only HTTP in
            metrics.observe_http_request(method, route, status, time.perf_counter() - started)

"""The dashboard: its page at `/`, its static files under `/dashboard/`, and the two reads
it needs that the API had not got.

The page is plain HTML, CSS and ES modules in api/dashboard/ (package data), served by
the API process itself: no build step, no second server, nothing fetched from elsewhere.
The files are public (api/auth.py): the page asks for the API key and sends it on every
call, so serving it gives nothing away.

- `GET /api/engine/health`: in flight against the limit, starts in the last minute against
  the rate, queue depths, outbox and projection lag and the processes' heartbeats, in one
  read from the sources `/readyz` and `/metrics` use.
- `GET /api/orders/{id}/state?version=N`: the order folded from its first N events by
  `domain.replay` (the fold `orderengine replay` uses), rendered as `GET /api/orders/{id}`.
- `GET /api/me`: who the key names (a user, an operator, or nobody on an open API), so the
  page offers the every-order board only to those who may follow it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath
from msgspec import UNSET, Meta, UnsetType

from adapters import metrics
from adapters.redis_layout import QUEUES
from api.auth import caller_of, ensure_visible, owner_of, role_of
from api.context import ApiDependency
from api.dashboard_schemas import (
    CALLER_EXAMPLE,
    HEALTH_EXAMPLE,
    STATE_EXAMPLE,
    CallerView,
    EngineHealth,
    Heartbeat,
    OrderStateAt,
    QueueDepth,
)
from api.input_rules import MAX_VERSION, whole_number
from api.openapi_docs import BEARER, documented, errors, query_parameters
from api.order_routes import OrderIdPath, parse_order_id
from api.request_error import RequestError
from api.schemas import OrderView, ProjectionLag
from domain.errors import OrderNotFound
from domain.replay import replay
from projections import orders_projection, redis_relay, stats_projection
from projections.order_views import to_view
from projections.orders_projection import row_params

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
FOLLOWERS = [redis_relay.NAME, orders_projection.NAME, stats_projection.NAME]


def _ok(data_container: Any, example: dict[str, Any], summary: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=data_container,
        description="Success",
        generate_examples=False,
        # As a Struct, like api/schemas.py's examples: a dict would lose its nulls in /schema.
        examples=[Example(summary=summary, value=msgspec.convert(example, data_container))],
    )


# -- the page ---------------------------------------------------------------------------


@get("/", include_in_schema=False, media_type="text/html")
async def dashboard_page() -> Response[bytes]:
    """The dashboard's page (its scripts and styles come from /dashboard/)."""
    # Read per request, not at import: a page edited during development shows on reload.
    body = (DASHBOARD_DIR / "index.html").read_bytes()
    return Response(body, media_type="text/html", headers={"cache-control": "no-cache"})


# Only the page's own files, by an exact name: no path from a request ever reaches the file
# system. (Litestar's static files router would do as well, but adds HEAD handlers and a
# `{file_path:path}` route that serves whatever the folder holds.)
_CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}
DASHBOARD_FILES = (
    frozenset(p.name for p in DASHBOARD_DIR.iterdir() if p.suffix in _CONTENT_TYPES)
    if DASHBOARD_DIR.is_dir()
    else frozenset()
)


@get("/dashboard/{name:str}", include_in_schema=False)
async def dashboard_file(name: FromPath[str]) -> Response[bytes]:
    """One of the page's scripts or its style sheet; 404 for anything else."""
    if name not in DASHBOARD_FILES:
        raise NotFoundException(f"no dashboard file {name[:100]!r}")
    path = DASHBOARD_DIR / name
    return Response(
        path.read_bytes(), media_type=_CONTENT_TYPES[path.suffix], headers={"cache-control": "no-cache"}
    )


# -- engine health ----------------------------------------------------------------------


async def _heartbeats(api: ApiDependency) -> tuple[list[Heartbeat], Heartbeat | None]:
    """Each process's heartbeat key holds the time of its last beat (workers/, which set them)."""
    redis, layout = api.engine.redis, api.engine.layout
    worker_prefix = layout.worker_heartbeats.removesuffix("*")
    keys = sorted([_text(k) async for k in redis.scan_iter(match=layout.worker_heartbeats, count=100)])
    values = await redis.mget([*keys, layout.scheduler_heartbeat])
    now = time.time()

    def beat(process: str, raw: Any) -> Heartbeat | None:
        if raw is None:  # expired between the SCAN and the MGET
            return None
        return Heartbeat(process=process, ageSeconds=round(max(now - float(_text(raw)), 0.0), 3))

    pairs = zip(keys, values[:-1], strict=True)
    workers = [beat("worker:" + key.removeprefix(worker_prefix), raw) for key, raw in pairs]
    return [w for w in workers if w is not None], beat("scheduler", values[-1])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@get(
    "/api/engine/health",
    security=BEARER,
    responses={200: _ok(EngineHealth, HEALTH_EXAMPLE, "health"), **errors(401, 503)},
    operation_class=documented(),
)
async def engine_health(api: ApiDependency) -> EngineHealth:
    """The engine's load against its limits, queue depths, outbox and projection lag and
    heartbeats, read now (what the dashboard's health panel shows)."""
    engine, settings = api.engine, api.settings
    pool = engine.database.pool
    lag = await metrics.read_follower_lag(pool, FOLLOWERS)
    open_orders = await metrics.read_open_orders(pool)
    depths = await metrics.read_queue_depths(engine.redis, engine.layout.dramatiq_namespace, list(QUEUES))
    workers, scheduler = await _heartbeats(api)
    return EngineHealth(
        checkedAt=datetime.now(UTC).isoformat(),
        market="chain" if settings.use_real_devnet else "mock",
        inFlight=await engine.slots.in_flight(),
        maxInFlight=settings.queue_max_concurrent,
        startsLastMinute=await engine.slots.starts_last_minute(),
        startsPerMinute=settings.order_processor_rate,
        queues={name: msgspec.convert(depth, QueueDepth) for name, depth in depths.items()},
        openOrders=open_orders,
        lag={name: ProjectionLag(events=n, seconds=round(age, 3)) for name, (n, age) in lag.items()},
        workers=workers,
        scheduler=scheduler,
    )


# -- an order's state at a version --------------------------------------------------------


class StateQuery(msgspec.Struct, kw_only=True):
    """Documents the query `order_state` reads by hand (so that a refusal names `version`)."""

    version: (
        Annotated[
            str,
            Meta(
                pattern="^[0-9]+$",
                description="Fold the first N events: 1 to the order's latest version (default: all)",
            ),
        ]
        | UnsetType
    ) = UNSET


@get(
    "/api/orders/{order_id:str}/state",
    security=BEARER,
    responses={200: _ok(OrderStateAt, STATE_EXAMPLE, "state"), **errors(401, 404, 422, 503)},
    operation_class=documented(parameters=query_parameters(StateQuery)),
)
async def order_state(
    order_id: OrderIdPath, request: Request[Any, Any, Any], api: ApiDependency
) -> OrderStateAt:
    """The order as it stood after its first `version` events, folded by the engine's own
    `fold` (as `orderengine replay --to-version`); 422 naming `version` if out of range."""
    oid = parse_order_id(order_id)
    history = await api.engine.store.read_stream(oid)
    if not history:
        raise OrderNotFound(order_id)
    ensure_visible(caller_of(request), owner_of(history), oid)
    latest = history[-1].version
    raw = request.query_params.get("version")
    version = latest if raw is None else whole_number("version", raw, MAX_VERSION, minimum=1)
    if not 1 <= version <= latest:
        raise RequestError(f"version must be between 1 and {latest}, the order's latest", field="version")
    kept, state = replay(history, to_version=version)
    return OrderStateAt(
        orderId=oid,
        version=version,
        latestVersion=latest,
        eventType=kept[-1].type,
        recordedAt=kept[-1].recorded_at.isoformat(),
        order=msgspec.convert(to_view(row_params(state, kept)), OrderView),
    )


# -- who the key names ----------------------------------------------------------------------


@get(
    "/api/me",
    security=BEARER,
    responses={200: _ok(CallerView, CALLER_EXAMPLE, "caller"), **errors(401)},
    operation_class=documented(),
)
async def who_am_i(request: Request[Any, Any, Any]) -> CallerView:
    """Who the key names: a user's key, an operator's, or none needed (an open API)."""
    return CallerView(role=role_of(request), userId=caller_of(request))


DASHBOARD_ROUTES = [dashboard_page, dashboard_file, engine_health, order_state, who_am_i]

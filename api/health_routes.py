"""Liveness (`/healthz`) and readiness (`/readyz`) probes: public, no API key needed."""

from __future__ import annotations

from litestar import Response, get
from msgspec import UNSET

from api.context import ApiDependency
from api.openapi_docs import ok
from api.schemas import Health, ProjectionLag, Readiness
from projections.follower_status import status as follower_status

# A log follower counts against readiness only when events have waited this long and it has
# not advanced for as long: stuck (the scheduler's followers died, or an event cannot be
# applied), which no retry of a request will fix. Lag alone never does: reads of a lagging
# projection are stale, not wrong (one order is folded from the log when its row is missing),
# commands do not read projections, every API instance would go unready at once (taking
# order placement down for a read-side delay), and a projection catching up from position 0
# (a new one, or after a restart) is far behind yet moving. Five minutes is far above any
# normal lag (a batch takes milliseconds; a scheduler failover, seconds) and below the time
# an operator would accept a stuck read side going unnoticed.
FOLLOWER_STALL_S = 300


@get("/healthz", responses={200: ok(Health, "health")})
async def healthz() -> Health:
    """The API process is up (no dependency is checked)."""
    return Health(status="ok")


@get(
    "/readyz",
    responses={
        200: ok(Readiness, "ready", "Every dependency is up"),
        503: ok(Readiness, "unready", "A dependency is down: `down` names it"),
    },
)
async def readyz(api: ApiDependency) -> Response[Readiness]:
    """Postgres, Redis, a live worker and a live scheduler, log followers not stalled: 200, or
    503 naming what is down. `lag` reports every follower's lag either way."""
    checks: dict[str, str] = {}
    engine = api.engine
    try:
        async with engine.database.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"down: {type(exc).__name__}"
    lag: dict[str, ProjectionLag] = {}
    if checks["postgres"] == "ok":
        try:
            followers = await follower_status(engine.database.pool)
            lag = {
                f.name: ProjectionLag(events=f.lag_events, seconds=round(f.lag_seconds, 3)) for f in followers
            }
            stalled = [
                f"{f.name} {f.lag_events} events behind" for f in followers if f.stalled(FOLLOWER_STALL_S)
            ]
            checks["projections"] = f"stalled: {', '.join(stalled)}" if stalled else "ok"
        except Exception as exc:
            checks["projections"] = f"unknown: {type(exc).__name__}"
    try:
        layout = engine.layout
        await engine.redis.ping()
        checks["redis"] = "ok"
        checks["scheduler"] = (
            "ok" if await engine.redis.exists(layout.scheduler_heartbeat) else "no heartbeat"
        )
        workers = [k async for k in engine.redis.scan_iter(match=layout.worker_heartbeats, count=100)]
        checks["worker"] = "ok" if workers else "no heartbeat"
    except Exception as exc:
        checks.setdefault("redis", f"down: {type(exc).__name__}")
    down = sorted(name for name, result in checks.items() if result != "ok")
    reported = lag or UNSET
    if down:
        return Response(
            Readiness(status="unavailable", checks=checks, down=down, lag=reported), status_code=503
        )
    return Response(Readiness(status="ready", checks=checks, lag=reported), status_code=200)


HEALTH_ROUTES = [healthz, readyz]

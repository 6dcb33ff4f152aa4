"""Liveness (`/healthz`) and readiness (`/readyz`) probes: public, no API key needed."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State

from api.schemas import Health, Readiness, ok


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
async def readyz(state: State) -> Response[Readiness]:
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
    if down:
        return Response(Readiness(status="unavailable", checks=checks, down=down), status_code=503)
    return Response(Readiness(status="ready", checks=checks), status_code=200)


HEALTH_ROUTES = [healthz, readyz]

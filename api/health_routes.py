"""Liveness (`/healthz`) and readiness (`/readyz`) probes."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.datastructures import State


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


HEALTH_ROUTES = [healthz, readyz]

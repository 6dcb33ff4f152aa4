"""Dramatiq on Redis: the broker, its middleware, and how work is enqueued.

Keys live under `{REDIS_PREFIX}:dramatiq` (Dramatiq's own layout: one list and
one hash per queue, plus `.DQ` delay queues). Retries: the actors decide the
delay themselves (domain backoff with jitter, recorded in a RetryScheduled
event) and raise `dramatiq.Retry(delay=…)`; the middleware only schedules it.
Infrastructure errors (Postgres or Redis briefly unreachable) are retried by the
middleware with its own backoff, up to INFRA_RETRIES times.
"""

from __future__ import annotations

import dramatiq
import psycopg
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from adapters.bootstrap import require_urls
from adapters.settings import Settings

QUEUE = "orders"
# Sniper orders: their own queue and actors with a higher priority, so a worker runs
# them ahead of ordinary orders it holds.
PRIORITY_QUEUE = "orders_priority"
INFRA_RETRIES = 10


def _retry_when(max_attempts: int):  # type: ignore[no-untyped-def]
    def retry_when(retries: int, exc: BaseException) -> bool:
        if isinstance(exc, dramatiq.Retry):
            return retries < max_attempts
        return isinstance(exc, psycopg.OperationalError | redis.ConnectionError) and retries < INFRA_RETRIES

    return retry_when


def make_broker(settings: Settings) -> RedisBroker:
    _, redis_url = require_urls(settings)
    middleware = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=max(settings.backoff_base_ms, 1),
            max_backoff=60_000,
            retry_when=_retry_when(settings.max_retries),
        ),
    ]
    return RedisBroker(
        url=redis_url,
        namespace=f"{settings.redis_prefix}:dramatiq",
        middleware=middleware,
        heartbeat_timeout=settings.worker_heartbeat_timeout_ms,
    )

"""The worker process: a Dramatiq worker with N threads consuming the order queue."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import dramatiq
import redis

from adapters.bootstrap import require_urls
from adapters.settings import Settings
from workers.actors import OrderActors
from workers.broker import make_broker

log = logging.getLogger("orderengine.worker")

HEARTBEAT_SECONDS = 5


def run_worker(settings: Settings) -> int:
    broker = make_broker(settings)
    actors = OrderActors(broker, settings)
    worker = dramatiq.Worker(
        broker, worker_threads=settings.worker_threads, worker_timeout=settings.worker_idle_ms
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    log.info("worker started", extra={"threads": settings.worker_threads})
    heartbeat = redis.Redis.from_url(require_urls(settings)[1])
    key = f"{settings.redis_prefix}:heartbeat:worker:{os.getpid()}"
    beat_at = 0.0
    while not stop.wait(0.5):
        if time.monotonic() - beat_at >= HEARTBEAT_SECONDS:  # /readyz looks for a fresh one
            try:
                heartbeat.set(key, str(time.time()), ex=HEARTBEAT_SECONDS * 3)
                beat_at = time.monotonic()
            except redis.RedisError:
                log.warning("worker heartbeat failed", exc_info=True)
    heartbeat.delete(key)
    heartbeat.close()
    log.info("worker stopping")
    worker.stop(timeout=10_000)
    actors.close()
    broker.close()
    return 0

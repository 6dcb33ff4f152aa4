"""The worker process: a Dramatiq worker with N threads consuming the order queue."""

from __future__ import annotations

import logging
import signal
import threading

import dramatiq

from adapters.settings import Settings
from workers.actors import OrderActors
from workers.broker import make_broker

log = logging.getLogger("orderengine.worker")


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
    while not stop.wait(0.5):
        pass
    log.info("worker stopping")
    worker.stop(timeout=10_000)
    actors.close()
    broker.close()
    return 0

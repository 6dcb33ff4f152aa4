"""The worker process: a Dramatiq worker whose threads run the execution steps as
coroutines on one event loop, over one engine (pool, clients, services).

The engine is opened on that loop when the worker boots and closed before the loop
stops (a middleware placed after Dramatiq's AsyncIO one), and a heartbeat task on
the same loop tells `/readyz` the worker is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import AsyncIO, Middleware

from adapters import worker_registry
from adapters.bootstrap import Engine, bootstrap, require_urls
from adapters.dramatiq_broker import make_broker
from adapters.settings import Settings
from domain.events import Step
from domain.order import OrderState
from domain.services.execution import Outcome
from workers.actors import declare_actors

log = logging.getLogger("orderengine.worker")

HEARTBEAT_SECONDS = 5


class EngineRuntime(Middleware):  # type: ignore[misc]
    """Opens the worker's engine on the actors' event loop, and closes it there."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The steps run concurrently on one loop: one pool connection for each is enough.
        self.engine: Engine = bootstrap(
            settings, role="worker", pool_min=2, pool_max=max(4, settings.worker_threads)
        )
        self._heartbeat: asyncio.Task[None] | None = None

    async def run_step(
        self, step: Step, order_id: str, attempt: int, message_id: str, known: OrderState | None
    ) -> Outcome:
        return await self.engine.execution.run(step, order_id, attempt, message_id, known)

    # Placed after AsyncIO: hooks run in order before, in reverse after, so the loop is
    # running when the engine opens and still running when it closes.
    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._on_loop(self._open())

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._on_loop(self._close())

    def _on_loop(self, coro: Any) -> None:
        loop = get_event_loop_thread()
        if loop is None:
            raise RuntimeError("the AsyncIO middleware is not running")
        loop.run_coroutine(coro)

    async def _open(self) -> None:
        await self.engine.open()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="worker-heartbeat")

    async def _close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        with contextlib.suppress(Exception):
            await self.engine.redis.delete(self.engine.layout.worker_heartbeat(os.getpid()))
        await self.engine.close()

    async def _beat(self) -> None:
        key = self.engine.layout.worker_heartbeat(os.getpid())
        while True:
            try:
                await self.engine.redis.set(key, str(time.time()), ex=HEARTBEAT_SECONDS * 3)
            except Exception:
                log.warning("worker heartbeat failed", exc_info=True)
            await asyncio.sleep(HEARTBEAT_SECONDS)


def run_worker(settings: Settings) -> int:
    runtime = EngineRuntime(settings)
    broker = make_broker(settings, require_urls(settings)[1], runtime.engine.layout)
    broker.add_middleware(runtime, after=AsyncIO)
    declare_actors(broker, runtime.run_step)
    worker = dramatiq.Worker(
        broker, worker_threads=settings.worker_threads, worker_timeout=settings.worker_idle_ms
    )
    # A dead worker of this host (killed, or the whole engine) gives its messages back now,
    # not after the heartbeat timeout: its orders resume as soon as this worker runs.
    worker_registry.register(broker.client, runtime.engine.layout, broker.broker_id)
    worker_registry.reclaim_dead_workers(broker.client, runtime.engine.layout, own_broker_id=broker.broker_id)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    log.info("worker started", extra={"threads": settings.worker_threads})
    stop.wait()
    log.info("worker stopping")
    worker.stop(timeout=10_000)
    worker_registry.unregister(broker.client, runtime.engine.layout, broker.broker_id)
    broker.close()
    return 0

"""The scheduler process: the log followers and the periodic jobs.

Runs the outbox relay (log → Redis streams), the `orders` and `stats` projections and
the NOTIFY listener that wakes them, in one scheduler per deployment at a time (an
advisory lock; a second scheduler stands by and takes over when the first dies), and
APScheduler jobs over the engine's services: re-quoting waiting orders, expiring overdue
ones, re-driving stuck ones, launching scheduled tokens and moving the mock market.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from adapters import metrics
from adapters.bootstrap import Engine, bootstrap
from adapters.database import Database
from adapters.settings import Settings
from projections import orders_projection, redis_relay, stats_projection
from projections import rebuild as projection_rebuild
from projections.log_follower import LogCache, LogFollower, LogWatcher
from projections.singleton import RELAY_LOCK_KEY, run_exclusively

log = logging.getLogger("orderengine.scheduler")

HEARTBEAT_SECONDS = 5
REBUILD_RETRY_S = 600.0


# Read models may lag a little: a short pause after a short batch makes the next one bigger.
PROJECTION_MIN_INTERVAL_S = 0.05


def log_followers(engine: Engine, watcher: LogWatcher) -> list[LogFollower]:
    """The orders and stats projections and the outbox relay, each with its own checkpoint,
    sharing one read of the log and one watcher of its head."""
    pool, settings = engine.database.pool, engine.settings
    relay = redis_relay.RedisRelay(
        engine.redis,
        engine.layout,
        stream_maxlen=settings.stream_maxlen,
        order_stream_ttl_s=settings.order_stream_ttl_s,
    )
    cache = LogCache()  # each event read and decoded once for the three
    shared = {"cache": cache, "watcher": watcher}
    return [
        LogFollower(
            pool,
            orders_projection.NAME,
            orders_projection.apply_batch,
            version=orders_projection.VERSION,
            min_interval_s=PROJECTION_MIN_INTERVAL_S,
            **shared,
        ),
        LogFollower(
            pool,
            stats_projection.NAME,
            stats_projection.apply_batch,
            version=stats_projection.VERSION,
            min_interval_s=PROJECTION_MIN_INTERVAL_S,
            **shared,
        ),
        # Feeds the WebSocket clients: it waits for nothing. It builds no read model.
        LogFollower(pool, redis_relay.NAME, relay, version=None, **shared),
    ]


async def run_scheduler_async(settings: Settings) -> None:
    # One connection per log follower's batch, plus the jobs'.
    async with bootstrap(settings, role="scheduler", pool_min=2, pool_max=5) as engine:
        await _serve(engine)


async def _serve(engine: Engine) -> None:
    settings = engine.settings
    watcher = LogWatcher(engine.database.pool, listens=True)
    followers = log_followers(engine, watcher)
    leader = asyncio.Event()  # set while this scheduler holds the relay lock

    async def heartbeat() -> None:
        await engine.redis.set(engine.layout.scheduler_heartbeat, str(time.time()), ex=HEARTBEAT_SECONDS * 3)

    def only_on_leader(job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if leader.is_set():
                await job()

        return run

    market_rng = random.Random(settings.mock_seed)

    async def advance_market() -> None:
        await engine.market.advance(
            market_rng, float(settings.market_volatility), float(settings.market_reversion)
        )

    async def launch_scheduled() -> None:
        await engine.waiting.launch_due(settings.mock_launches)

    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = AsyncIOScheduler()
    scheduler.add_job(heartbeat, "interval", seconds=HEARTBEAT_SECONDS)

    def on_leader_every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        # max_instances=1 and coalesce: a slow run is never stacked or replayed in a burst.
        scheduler.add_job(
            only_on_leader(job),
            "interval",
            seconds=seconds,
            max_instances=1,
            coalesce=True,
            name=job.__name__,
        )

    recheck, tick = settings.limit_recheck_interval_ms / 1000, settings.market_tick_ms / 1000
    on_leader_every(recheck, engine.waiting.requote_waiting)
    on_leader_every(recheck, engine.waiting.expire_overdue)
    on_leader_every(settings.stuck_check_interval_s, engine.stuck.redrive)
    if settings.mock_launches:
        on_leader_every(tick, launch_scheduled)
    if settings.market_volatility > 0:
        on_leader_every(tick, advance_market)
    scheduler.start()
    await heartbeat()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def follow_log() -> None:
        leader.set()
        metrics.SCHEDULER_LEADER.set(1)  # summed over live schedulers: other than 1 is worth an alert
        upgrade = [rebuild_outdated(engine.database)] if settings.projection_auto_rebuild else []
        try:
            await asyncio.gather(
                watcher.listen(engine.database.connect),
                watcher.run(),
                *(f.run() for f in followers),
                *upgrade,
            )
        finally:
            leader.clear()
            metrics.SCHEDULER_LEADER.set(0)

    # Every scheduler runs the jobs; only the lock holder runs the relay and projections.
    tasks = [
        asyncio.create_task(
            run_exclusively(engine.database.connect, RELAY_LOCK_KEY, follow_log, name="log followers"),
            name="log-followers",
        )
    ]
    log.info("scheduler started")
    try:
        await stop.wait()
    finally:
        log.info("scheduler stopping")
        scheduler.shutdown(wait=False)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def rebuild_outdated(db: Database, retry_after_s: float = REBUILD_RETRY_S) -> None:
    """Rebuild the projections older code built, while the followers keep them serving; a
    failed rebuild leaves the live tables as they were and is tried again later."""
    while True:
        try:
            report = await projection_rebuild.rebuild_outdated(db)
        except projection_rebuild.RebuildRunning:
            return  # an operator's rebuild is at it
        except Exception:
            log.exception("rebuilding outdated projections failed; retrying in %.0f s", retry_after_s)
            await asyncio.sleep(retry_after_s)
            continue
        if report is not None:
            log.info(
                "outdated projections rebuilt",
                extra={"projections": [p.name for p in report.projections], "events": report.events},
            )
        return


def run_scheduler(settings: Settings) -> int:
    asyncio.run(run_scheduler_async(settings))
    return 0

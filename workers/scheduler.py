"""The scheduler process: the log followers and the periodic jobs.

Runs the outbox relay (log → Redis streams), the `orders` and `stats` projections
and the NOTIFY listener that wakes them, in one scheduler per deployment at a time (an
advisory lock; a second scheduler stands by and takes over when the first
dies), and APScheduler jobs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import anyio
import redis as sync_redis
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from adapters import metrics
from adapters.bootstrap import make_pool, make_redis, require_urls
from adapters.market import RedisMarket
from adapters.postgres_event_store import PostgresEventStore
from adapters.settings import Settings
from domain.events import Step
from projections import orders_projection, redis_relay, stats_projection
from projections import rebuild as projection_rebuild
from projections.log_follower import LogFollower, listen_for_events
from projections.singleton import RELAY_LOCK_KEY, run_exclusively
from workers.actors import OrderActors
from workers.broker import make_broker
from workers.limit_jobs import LimitOrderJobs, launch_due_tokens
from workers.redriver import StuckOrderRedriver

log = logging.getLogger("orderengine.scheduler")

HEARTBEAT_SECONDS = 5
REBUILD_RETRY_S = 600.0


async def run_scheduler_async(settings: Settings) -> None:
    database_url, redis_url = require_urls(settings)
    # One connection per log follower's batch, plus the jobs'.
    pool = make_pool(settings, min_size=2, max_size=5)
    await pool.open(wait=True)
    redis = make_redis(settings)
    followers = [
        LogFollower(
            pool, orders_projection.NAME, orders_projection.apply_batch, version=orders_projection.VERSION
        ),
        LogFollower(
            pool, stats_projection.NAME, stats_projection.apply_batch, version=stats_projection.VERSION
        ),
        LogFollower(
            pool,
            redis_relay.NAME,
            redis_relay.RedisRelay(
                redis,
                settings.redis_prefix,
                stream_maxlen=settings.stream_maxlen,
                order_stream_ttl_s=settings.order_stream_ttl_s,
            ),
            version=None,  # builds no read model
        ),
    ]

    async def heartbeat() -> None:
        await redis.set(
            f"{settings.redis_prefix}:heartbeat:scheduler", str(time.time()), ex=HEARTBEAT_SECONDS * 3
        )

    broker = make_broker(settings)
    actors = OrderActors(broker, settings)  # only to send messages; this process runs none

    async def send_route(order_id: str, priority: bool) -> None:
        await anyio.to_thread.run_sync(functools.partial(actors.send, "route", order_id, priority=priority))

    limit_jobs = LimitOrderJobs(pool, PostgresEventStore(pool.connection), send_route)

    async def send_step(step: Step, order_id: str, priority: bool) -> None:
        await anyio.to_thread.run_sync(functools.partial(actors.send, step, order_id, priority=priority))

    async def claim_redrive(order_id: str, version: int) -> bool:
        key = f"{settings.redis_prefix}:redriven:{order_id}:{version}"
        return bool(await redis.set(key, "1", nx=True, ex=86_400))

    redriver = StuckOrderRedriver(pool, send_step, claim_redrive, timedelta(seconds=settings.stuck_after_s))
    leader = asyncio.Event()  # set while this scheduler holds the relay lock

    def only_on_leader(job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if leader.is_set():
                await job()

        return run

    market = RedisMarket(sync_redis.Redis.from_url(redis_url), settings.redis_prefix)
    market_rng = random.Random(settings.mock_seed)

    async def advance_market() -> None:
        await anyio.to_thread.run_sync(
            market.advance, market_rng, float(settings.market_volatility), float(settings.market_reversion)
        )

    async def launch_scheduled() -> None:
        await launch_due_tokens(market, limit_jobs, settings.mock_launches)

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
    on_leader_every(recheck, limit_jobs.requote_waiting)
    on_leader_every(recheck, limit_jobs.expire_overdue)
    on_leader_every(settings.stuck_check_interval_s, redriver.redrive)
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
        upgrade = [rebuild_outdated(database_url)] if settings.projection_auto_rebuild else []
        try:
            await asyncio.gather(
                *(f.run() for f in followers), listen_for_events(database_url, followers), *upgrade
            )
        finally:
            leader.clear()
            metrics.SCHEDULER_LEADER.set(0)

    # Every scheduler runs the jobs; only the lock holder runs the relay and projections.
    tasks = [
        asyncio.create_task(
            run_exclusively(database_url, RELAY_LOCK_KEY, follow_log, name="log followers"),
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
        await redis.aclose()
        await pool.close()
        broker.close()


async def rebuild_outdated(database_url: str, retry_after_s: float = REBUILD_RETRY_S) -> None:
    """Rebuild the projections older code built, while the followers keep them serving; a
    failed rebuild leaves the live tables as they were and is tried again later."""
    while True:
        try:
            report = await projection_rebuild.rebuild_outdated(database_url)
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

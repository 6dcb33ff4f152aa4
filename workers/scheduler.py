"""The scheduler process: the log followers and the periodic jobs.

Runs, once per deployment: the outbox relay (log → Redis streams), the `orders`
projection, the NOTIFY listener that wakes them, and APScheduler jobs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from adapters.bootstrap import make_pool, make_redis, require_urls
from adapters.settings import Settings
from projections import orders_projection, redis_relay
from projections.log_follower import LogFollower, listen_for_events

log = logging.getLogger("orderengine.scheduler")

HEARTBEAT_SECONDS = 5


async def run_scheduler_async(settings: Settings) -> None:
    database_url, _ = require_urls(settings)
    pool = make_pool(settings, min_size=2, max_size=4)
    await pool.open(wait=True)
    redis = make_redis(settings)
    followers = [
        LogFollower(pool, orders_projection.NAME, orders_projection.apply_batch),
        LogFollower(pool, redis_relay.NAME, redis_relay.RedisRelay(redis, settings.redis_prefix)),
    ]

    async def heartbeat() -> None:
        await redis.set(
            f"{settings.redis_prefix}:heartbeat:scheduler", str(time.time()), ex=HEARTBEAT_SECONDS * 3
        )

    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = AsyncIOScheduler()
    scheduler.add_job(heartbeat, "interval", seconds=HEARTBEAT_SECONDS)
    scheduler.start()
    await heartbeat()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = [asyncio.create_task(f.run(), name=f"follower:{f.name}") for f in followers]
    tasks.append(asyncio.create_task(listen_for_events(database_url, followers), name="listener"))
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


def run_scheduler(settings: Settings) -> int:
    asyncio.run(run_scheduler_async(settings))
    return 0

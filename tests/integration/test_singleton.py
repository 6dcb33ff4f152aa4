"""One relay per deployment: a second instance waits and takes over when the first dies."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import anyio
import psycopg
import pytest

from adapters.database import Database
from projections.singleton import Connect, run_exclusively

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def connect_to(database_url: str) -> Connect:
    return Database(database_url).connect


async def wait_for(check: Callable[[], bool], timeout: float) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await asyncio.sleep(0.02)


def lock_holder_pid(database_url: str, key: int) -> int | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((classid::bigint << 32) | objid::bigint) = %s",
            (key,),
        ).fetchone()
    return int(row[0]) if row else None


class Instances:
    """Tasks that record which instance is running, and the most ever running at once."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.peak = 0

    def task(self, name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            self.running.append(name)
            self.peak = max(self.peak, len(self.running))
            try:
                await asyncio.Event().wait()
            finally:
                self.running.remove(name)

        return run


async def test_standby_waits_then_takes_over_when_the_holder_stops(database_url: str) -> None:
    key, seen = random.randint(1, 2**31), Instances()
    async with anyio.create_task_group() as tg:
        first = anyio.CancelScope()

        async def run_first() -> None:
            with first:
                await run_exclusively(
                    connect_to(database_url), key, seen.task("first"), name="first", check_interval=0.1
                )

        tg.start_soon(run_first)
        await wait_for(lambda: seen.running == ["first"], 10)
        tg.start_soon(
            lambda: run_exclusively(
                connect_to(database_url), key, seen.task("second"), name="second", check_interval=0.1
            )
        )
        with anyio.move_on_after(0.6):  # the standby must not start while the lock is held
            await wait_for(lambda: "second" in seen.running, 10)
        assert seen.running == ["first"]

        first.cancel()  # the holder's process goes away, and its session with it
        await wait_for(lambda: seen.running == ["second"], 10)
        tg.cancel_scope.cancel()
    assert seen.peak == 1


async def test_holder_stops_its_task_when_its_lock_session_is_lost(database_url: str) -> None:
    key, seen = random.randint(1, 2**31), Instances()
    async with anyio.create_task_group() as tg:
        for name in ("a", "b"):
            tg.start_soon(
                lambda n=name: run_exclusively(
                    connect_to(database_url), key, seen.task(n), name=n, check_interval=0.1
                )
            )
        await wait_for(lambda: len(seen.running) == 1, 10)
        holder = seen.running[0]
        pid = lock_holder_pid(database_url, key)
        assert pid is not None
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # The holder notices within a check interval; then exactly one instance runs again.
        await wait_for(
            lambda: lock_holder_pid(database_url, key) not in (None, pid) and len(seen.running) == 1, 10
        )
        assert holder in ("a", "b")
        tg.cancel_scope.cancel()
    # No peak assertion here: for up to one check interval after its session is cut,
    # the old holder may still run beside the new one (see projections/singleton.py).

"""The global position is gap-safe for a reader tailing the log by position.

`read_all(conn, after=last_seen, limit=…)` only works as a tail if an event can
never become visible below a position the reader has already passed. The store
guarantees it: every append goes through `append_events()` (migration 0011), which
takes `LOCK TABLE events IN EXCLUSIVE MODE` before it inserts, so positions are
assigned, and become visible, in commit order.

- Under load: 8 writers (`WRITERS`), each through a `PostgresEventStore` of its own on
  the pool (a store batches its writers' appends into one call, so stores of their own
  are what overlaps at the server), append 250 events each (`EVENTS_PER_WRITER`, 2,000
  in all), 1 to 4 events per append (`MAX_BATCH`), to streams
  of their own; meanwhile one reader on its own connection tails the log with
  `read_all(…, limit=READ_LIMIT)`. It must see every appended position exactly
  once, in strictly increasing order. The writers are asyncio tasks; that they
  really overlap at the server is checked two ways: the reader samples `pg_locks`
  and must find appends queued on the table lock (typically 7 waiting, in >95% of
  samples), and the control below loses events under the very same load.
- Control under the same load: the same run through a copy of `append_events()`
  without its LOCK (in a schema of the test's own, first on the search path of those
  connections); the tail must skip some events (15–180 of the 2,000 per run on a
  2-core machine).
- Step by step, with the lock: an append held open in a transaction after its
  `append_events()` makes a second append queue on the lock, so the reader sees
  neither until both commit, then both, in order.
- Deterministic control (no lock, an INSERT of our own): one writer inserts and
  keeps its transaction open; a second inserts after it and commits at once; the
  naive tail reads in between, passes the second, and never sees the first once
  it commits. The open transaction is the delay, ended by the test after the
  read, not by a timer, so the skip happens on every run.

The load run takes about a second each way; the module about 2–3 s.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import anyio
import msgspec
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.postgres_event_store import ConnectionSource, PostgresEventStore, read_all
from domain.events import Event, RetryScheduled, encode_event, event_type
from domain.ports import EventMetadata
from tests.factories import new_order_id, pending_event

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Pool = AsyncConnectionPool[AsyncConnection[Any]]

WRITERS = 8
EVENTS_PER_WRITER = 250
MAX_BATCH = 4  # events per append: 1..MAX_BATCH, drawn per append
STREAM_LENGTH = 10  # events per stream before a writer starts a new one
READ_LIMIT = 50
DEADLINE_S = 20.0  # the whole load run; it takes ~1 s

# Appends waiting for the table lock that another append holds.
_LOCK_WAITERS = """
SELECT count(*) FILTER (WHERE NOT granted)
FROM pg_locks
WHERE locktype = 'relation' AND mode = 'ExclusiveLock'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND relation = 'events'::regclass
"""

# An append without the table lock: what the store must not do.
_NAIVE_INSERT = """
INSERT INTO events (stream_id, version, type, data, metadata)
VALUES (%s, 1, %s, %s::jsonb, %s::jsonb) RETURNING position
"""


def meta(stream_id: str) -> EventMetadata:
    return EventMetadata(correlation_id=stream_id, causation_id="log-ordering", actor="test")


def stream_events(stream_id: str, first_version: int, count: int, writer: int) -> list[Event]:
    """Events that fold (OrderPending, then retries): other suites fold this session's log."""
    return [
        pending_event(stream_id)
        if v == 1
        else RetryScheduled(step="route", attempt=v - 1, error=f"writer {writer}", delay_ms=1)
        for v in range(first_version, first_version + count)
    ]


async def head(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def lock_waiters(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute(_LOCK_WAITERS)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def tail(conn: AsyncConnection[Any], after: int) -> list[int]:
    """Every position a tailing reader gets from `after` up to the current end."""
    seen: list[int] = []
    while events := await read_all(conn, after, READ_LIMIT):
        seen += [e.position for e in events]
        after = events[-1].position
    return seen


@dataclass
class Load:
    """What one load run appended and what the tailing reader saw."""

    appended: dict[int, tuple[str, int]] = field(default_factory=dict)  # position -> (stream, version)
    seen: list[tuple[int, str, int]] = field(default_factory=list)  # in the order read
    reads_with_rows_while_writing: int = 0
    jumps_seen: int = 0  # reads that skipped over a position, as far as the reader could tell
    lock_waiters: list[int] = field(default_factory=list)  # sampled by the reader while writing

    @property
    def positions(self) -> list[int]:
        return [p for p, _, _ in self.seen]

    @property
    def skipped(self) -> list[int]:
        return sorted(set(self.appended) - set(self.positions))


async def run_load(stores: list[PostgresEventStore], database_url: str) -> Load:
    """WRITERS concurrent writers, each through a store of its own (a store batches its own
    writers' appends into one call: stores of their own overlap at the server), and one
    reader tailing with read_all."""
    load = Load()
    writers_done = anyio.Event()
    finished = 0

    async def writer(index: int) -> None:
        nonlocal finished
        rng = random.Random(index)
        remaining = EVENTS_PER_WRITER
        while remaining:
            stream, version = new_order_id(), 0
            while version < STREAM_LENGTH and remaining:
                n = min(rng.randint(1, MAX_BATCH), STREAM_LENGTH - version, remaining)
                events = stream_events(stream, version + 1, n, index)
                for r in await stores[index].append(stream, version, events, meta(stream)):
                    load.appended[r.position] = (stream, r.version)
                version += n
                remaining -= n
        finished += 1
        if finished == WRITERS:
            writers_done.set()

    async def reader(conn: AsyncConnection[Any], after: int) -> None:
        while True:
            done_before_read = writers_done.is_set()
            events = await read_all(conn, after, READ_LIMIT)
            if events:
                read = [after, *(e.position for e in events)]
                load.jumps_seen += any(b - a > 1 for a, b in pairwise(read))
                load.seen.extend((e.position, e.stream_id, e.version) for e in events)
                after = events[-1].position
                load.reads_with_rows_while_writing += not done_before_read
            elif done_before_read:
                return  # every append had committed before this read found nothing new
            if not done_before_read:
                load.lock_waiters.append(await lock_waiters(conn))

    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        start = await head(conn)
        with anyio.fail_after(DEADLINE_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader, conn, start)
                for i in range(WRITERS):
                    tg.start_soon(writer, i)
    assert len(load.appended) == WRITERS * EVENTS_PER_WRITER
    print(
        f"\n{len(load.appended)} appended, {len(load.seen)} read; "
        f"{load.reads_with_rows_while_writing} reads with rows while writing; "
        f"{load.jumps_seen} reads jumped a position; {len(load.skipped)} skipped; lock waiters: "
        f"max {max(load.lock_waiters, default=0)}, >=1 in "
        f"{sum(w >= 1 for w in load.lock_waiters)}/{len(load.lock_waiters)} samples"
    )
    return load


def stores_on(connection: ConnectionSource) -> list[PostgresEventStore]:
    return [PostgresEventStore(connection) for _ in range(WRITERS)]


async def test_tailing_reader_sees_every_concurrent_append_once_in_order(
    pool: Pool, database_url: str
) -> None:
    load = await run_load(stores_on(pool.connection), database_url)

    assert all(a < b for a, b in pairwise(load.positions)), "the tail went backwards or repeated"
    assert load.skipped == []
    mine = [(p, s, v) for p, s, v in load.seen if p in load.appended]
    assert len(mine) == len(load.appended)
    assert {p: (s, v) for p, s, v in mine} == load.appended
    # The reader really tailed (not one read at the end), and the appends really overlapped
    # at the server: several waited for the table lock while another append held it.
    assert load.reads_with_rows_while_writing >= 10
    assert max(load.lock_waiters) >= 2


# A copy of append_events without its LOCK, in a schema of the test's own that comes first
# on the search path of the control's connections: the append the store must not do.
_UNLOCKED_COPY = """
SELECT replace(replace(pg_get_functiondef('public.append_events'::regproc),
                       'LOCK TABLE events IN EXCLUSIVE MODE;', ''),
               'public.append_events', %s)
"""


@asynccontextmanager
async def without_the_lock(pool: Pool) -> AsyncIterator[ConnectionSource]:
    schema = f"control_{uuid.uuid4().hex[:10]}"
    async with pool.connection() as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        cur = await conn.execute(_UNLOCKED_COPY, (f"{schema}.append_events",))
        row = await cur.fetchone()
        assert row is not None and "LOCK TABLE" not in row[0]
        await conn.execute(row[0])

    @asynccontextmanager
    async def unlocked() -> AsyncIterator[AsyncConnection[Any]]:
        async with pool.connection() as conn:
            await conn.execute(f"SET search_path TO {schema}, public")
            try:
                yield conn
            finally:
                await conn.execute("RESET search_path")

    try:
        yield unlocked
    finally:
        async with pool.connection() as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_control_under_the_same_load_without_the_lock_the_tail_skips(
    pool: Pool, database_url: str
) -> None:
    """The load test has teeth: asyncio writers overlap enough that lock-free appends get skipped."""
    async with without_the_lock(pool) as unlocked:
        load = await run_load(stores_on(unlocked), database_url)

    assert all(a < b for a, b in pairwise(load.positions))  # the tail itself still moves forward
    assert load.skipped, "no append was skipped: the writers did not overlap"
    assert load.jumps_seen >= 1


async def test_an_append_waits_for_an_open_append_so_the_tail_sees_both(
    pool: Pool, store: PostgresEventStore, database_url: str
) -> None:
    slow, fast = new_order_id(), new_order_id()
    results: dict[str, int] = {}

    async def append_fast() -> None:
        recorded = await store.append(fast, 0, [pending_event(fast)], meta(fast))
        results[fast] = recorded[0].position

    event = pending_event(slow)
    slow_append = json.dumps(
        [
            {
                "s": slow,
                "x": 0,
                "t": event_type(event),
                "d": json.loads(encode_event(event)),
                "m": json.loads(msgspec.json.encode(meta(slow))),
            }
        ]
    )
    async with await AsyncConnection.connect(database_url, autocommit=True) as reader:
        start = await head(reader)
        with anyio.fail_after(10):
            async with pool.connection() as slow_conn, anyio.create_task_group() as tg:
                async with slow_conn.transaction():
                    # `slow` holds the lock, its row inserted, not committed.
                    cur = await slow_conn.execute(
                        "SELECT position FROM append_events(%s::jsonb)", (slow_append,)
                    )
                    row = await cur.fetchone()
                    assert row is not None
                    results[slow] = int(row[0])
                    tg.start_soon(append_fast)
                    while await lock_waiters(reader) < 1:  # `fast` is queued on the lock
                        await anyio.sleep(0.005)
                    in_between = await tail(reader, start)
            after_both = in_between + await tail(reader, in_between[-1] if in_between else start)

    assert in_between == []
    assert results[slow] < results[fast]
    assert after_both == [results[slow], results[fast]]


async def test_control_without_the_lock_a_late_commit_is_skipped_by_the_tail(
    pool: Pool, database_url: str
) -> None:
    """Shows the other tests have teeth: the same tail over lock-free appends loses an event."""

    async def naive_insert(conn: AsyncConnection[Any], stream: str) -> int:
        event = pending_event(stream)
        cur = await conn.execute(
            _NAIVE_INSERT,
            (
                stream,
                event_type(event),
                encode_event(event).decode(),
                msgspec.json.encode(meta(stream)).decode(),
            ),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    slow, fast = new_order_id(), new_order_id()
    async with (
        await AsyncConnection.connect(database_url, autocommit=True) as reader,
        pool.connection() as slow_conn,
        pool.connection() as fast_conn,
    ):
        start = await head(reader)
        async with slow_conn.transaction():
            slow_position = await naive_insert(slow_conn, slow)  # position taken, not yet visible
            fast_position = await naive_insert(fast_conn, fast)  # autocommit: visible at once
            seen_before = await tail(reader, start)  # the tail passes `fast`...
        # ...and `slow` commits below it.
        seen_after = await tail(reader, seen_before[-1])
        cur = await reader.execute("SELECT count(*) FROM events WHERE position = %s", (slow_position,))
        committed = await cur.fetchone()

    assert slow_position < fast_position
    assert committed == (1,)
    assert seen_before == [fast_position]
    assert seen_after == []  # `slow` is in the log, and the tail never sees it

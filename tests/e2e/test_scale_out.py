"""Scale-out: two API processes on two ports, two worker processes and two schedulers on
one Postgres and one Redis, each started on its own as a container would start it
(`orderengine api|worker|scheduler`).

Orders placed through either API are executed once (one swap request, one confirmation,
one execution on the mock chain), every WebSocket on either API receives every event of
its order in order, a user's stream on one API receives the orders placed through the
other, the standby scheduler takes over when the leader is killed, and `orderengine
audit` finds the log and both read models consistent. And `orderengine run` starts
WORKER_PROCESSES workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
import redis
import websockets

from adapters.redis_layout import RedisLayout
from domain.order import INTERNAL_EVENTS
from tests.conftest import delete_prefix
from tests.e2e.engine import FAST, Engine, free_port
from tests.e2e.ws_client import collect
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
INTERNAL = {cls.__name__ for cls in INTERNAL_EVENTS}
TERMINAL = {"confirmed", "failed", "cancelled", "expired"}


class Role:
    """One engine process of one role, with its log in .data/."""

    def __init__(self, role: str, env: dict[str, str], label: str) -> None:
        self.role = role
        self.log_path = REPO / ".data" / f"e2e-scale-{label}-{uuid.uuid4().hex[:6]}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", role],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class Deployment:
    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url, self.redis_url = database_url, redis_url
        self.prefix = f"oetest-scale-{uuid.uuid4().hex[:8]}"
        base = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.env = {
            **base,
            **FAST,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": self.prefix,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
        }
        self.ports = [free_port(), free_port()]
        self.roles: dict[str, Role] = {}

    def start(self) -> Deployment:
        for n, port in enumerate(self.ports, 1):
            self.roles[f"api-{n}"] = Role("api", {**self.env, "PORT": str(port)}, f"api{n}")
        for n in (1, 2):
            self.roles[f"worker-{n}"] = Role("worker", self.env, f"worker{n}")
            self.roles[f"scheduler-{n}"] = Role("scheduler", self.env, f"scheduler{n}")
        for url in self.urls:
            wait_until(lambda u=url: self._ready(u), 60, interval=0.2, what=f"{url}/readyz")
        return self

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def _ready(self, url: str) -> bool:
        for name, role in self.roles.items():
            if role.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {role.proc.returncode}:\n{role.log()}")
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for role in self.roles.values():
            role.stop()
        delete_prefix(self.redis_url, self.prefix)
        for role in self.roles.values():
            role.log_path.unlink(missing_ok=True)

    def leading_scheduler(self) -> str:
        """The scheduler whose session holds the log followers' advisory lock (each engine
        session is named after its process: `orderengine-<role> <pid>`)."""
        from projections.singleton import RELAY_LOCK_KEY

        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted"
                # This database's lock: other engines on the server hold the same key in theirs.
                " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
                (RELAY_LOCK_KEY,),
            ).fetchone()
        assert row is not None, "no scheduler holds the lock"
        pid = int(str(row[0]).rsplit(" ", 1)[1])
        return next(name for name, role in self.roles.items() if role.proc.pid == pid)


@pytest.fixture
def deployment(own_database_url: str, redis_url: str) -> Iterator[Deployment]:
    deployed = Deployment(own_database_url, redis_url).start()
    try:
        yield deployed
    finally:
        deployed.stop()


def place(url: str, user: str) -> str:
    body = {"userId": user, "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"}
    response = httpx.post(f"{url}/api/orders/execute", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["orderId"])


def logged(database_url: str, order_id: str) -> list[tuple[int, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT version, type FROM events WHERE stream_id = %s ORDER BY version", (order_id,)
        ).fetchall()
    return [(int(v), str(t)) for v, t in rows]


async def user_stream(url: str, user: str, want: int, sink: list[dict[str, Any]]) -> None:
    """Collect `/ws?userId=` messages until `want` orders have ended."""
    ws_url = url.replace("http://", "ws://") + f"/ws?userId={user}"
    with anyio.fail_after(60):
        async with websockets.connect(ws_url) as ws:
            ended: set[str] = set()
            async for raw in ws:
                message = json.loads(raw)
                sink.append(message)
                if message["status"] in TERMINAL:
                    ended.add(message["orderId"])
                    if len(ended) >= want:
                        return


Streamed = dict[str, tuple[list[dict[str, Any]], int | None]]  # order -> its messages, close code


def run_orders(deployment: Deployment, user: str, count: int) -> Streamed:
    """Place `count` orders alternately through each API; stream each on the other one."""

    async def scenario() -> Streamed:
        streamed: Streamed = {}
        async with anyio.create_task_group() as tg:
            for i in range(count):
                placed_on, streamed_on = deployment.urls[i % 2], deployment.urls[(i + 1) % 2]
                order_id = await anyio.to_thread.run_sync(place, placed_on, user)

                async def watch(oid: str = order_id, url: str = streamed_on) -> None:
                    streamed[oid] = await collect(url, oid, timeout=60)

                tg.start_soon(watch)
        return streamed

    return anyio.run(scenario)


def check_executed_once_and_streamed(deployment: Deployment, streamed: Streamed) -> None:
    chain = redis.Redis.from_url(deployment.redis_url)
    layout = RedisLayout(deployment.prefix)
    try:
        for order_id, (messages, close_code) in streamed.items():
            events = logged(deployment.database_url, order_id)
            types = [t for _, t in events]
            assert types.count("OrderConfirmed") == 1 and types.count("SwapRequested") == 1, types
            assert chain.scard(layout.mockchain_swaps(order_id)) == 1  # one execution on the "chain"
            sent = [(v, t) for v, t in events if t not in INTERNAL]
            assert [(m["version"], m["type"]) for m in messages] == sent  # all, in order, once
            assert close_code == 1000
    finally:
        chain.close()


def audit_is_clean(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "audit", "--json"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_two_apis_two_workers_two_schedulers_execute_once_stream_everything_and_audit_clean(
    deployment: Deployment,
) -> None:
    user = f"scale-{uuid.uuid4().hex[:6]}"
    user_messages: list[dict[str, Any]] = []

    async def with_user_stream(run: Callable[[], Any], want: int) -> Any:
        async with anyio.create_task_group() as tg:
            tg.start_soon(user_stream, deployment.urls[1], user, want, user_messages)
            result = await anyio.to_thread.run_sync(run)
        return result

    first = anyio.run(with_user_stream, lambda: run_orders(deployment, user, 10), 10)
    check_executed_once_and_streamed(deployment, first)

    # The leader's log followers move to the standby when the leader dies.
    leader = deployment.leading_scheduler()
    deployment.roles[leader].stop(signal.SIGKILL)
    second = run_orders(deployment, user, 6)
    check_executed_once_and_streamed(deployment, second)
    assert deployment.leading_scheduler() != leader

    # The user's stream on the second API saw every order, including those placed on the first.
    seen = {(m["orderId"], m["version"]) for m in user_messages}
    for order_id in first:
        for version, kind in logged(deployment.database_url, order_id):
            if kind not in INTERNAL:
                assert (order_id, version) in seen
    audit_is_clean(deployment.database_url)


def test_run_starts_as_many_workers_as_worker_processes(
    start_engine: Callable[..., Engine], redis_url: str
) -> None:
    engine = start_engine(WORKER_PROCESSES="2")
    client = redis.Redis.from_url(redis_url)
    try:
        pattern = RedisLayout(engine.prefix).worker_heartbeats

        def two_heartbeats() -> bool:
            return len(list(client.scan_iter(match=pattern))) == 2

        wait_until(two_heartbeats, 30, what="two worker heartbeats")
        order_id = engine.submit()
        assert engine.wait_for_status(order_id, {"confirmed"})["status"] == "confirmed"
    finally:
        client.close()

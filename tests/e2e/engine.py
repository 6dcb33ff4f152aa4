"""Starts the real engine (`orderengine run`: API, worker, scheduler processes)
against the test session's servers, with its own port and Redis prefix."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from adapters.redis_layout import RedisLayout
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]

# Shrunk mock delays (quotes 4–8 ms, swap 40–60 ms), fast retries, limit re-quotes every 100 ms.
FAST = {
    "MOCK_LATENCY_SCALE": "0.02",
    "BACKOFF_BASE_MS": "50",
    "WORKER_IDLE_MS": "20",
    "LIMIT_RECHECK_INTERVAL_MS": "100",
    # Engines share the session's database: re-driving stays off unless a test asks,
    # or one engine would pick up orders another test left behind.
    "STUCK_AFTER_S": "600",
    # A frozen market (quotes are still noisy around it): tests that need prices to
    # move set them through PUT /api/market/prices; the walk itself is unit-tested.
    "MARKET_VOLATILITY": "0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Engine:
    def __init__(self, database_url: str, redis_url: str, *, args: tuple[str, ...] = (), **env: str) -> None:
        self.args = args  # given to `orderengine run`
        self.port = free_port()
        self.prefix = f"oetest-e2e-{uuid.uuid4().hex[:8]}"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": self.prefix,
            "PORT": str(self.port),
            "LOG_FORMAT": "json",
            **FAST,
            **env,
        }
        self.log_path = REPO / ".data" / f"e2e-{self.prefix}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Engine:
        self.log_path.parent.mkdir(exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "run", *self.args],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc = self.proc

        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"engine exited with {proc.returncode}:\n{self.log()}")
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(healthy, timeout, interval=0.1, what="the engine's /healthz")
        except AssertionError:
            self.stop()
            raise RuntimeError(f"engine did not answer within {timeout}s:\n{self.log()}") from None
        return self

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def worker_process(self) -> psutil.Process:
        """The (first) worker process the supervisor runs."""
        assert self.proc is not None
        for child in psutil.Process(self.proc.pid).children():
            if "worker" in child.cmdline():
                return child
        raise AssertionError("no worker process under the supervisor")

    def audit(self, **env: str) -> dict[str, Any]:
        """`orderengine audit --json` on this engine's database: its report (AssertionError
        with the output if it does not run or finds a divergence)."""
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", "audit", "--json"],
            cwd=REPO,
            env={**self.env, "LOG_FORMAT": "console", **env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise AssertionError(f"audit exited {done.returncode}: {done.stdout}{done.stderr}")
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    # -- client helpers ------------------------------------------------------

    def submit(self, **overrides: Any) -> str:
        body = {
            "userId": "e2e-user",
            "orderType": "market",
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amount": "1.5",
            **overrides,
        }
        response = httpx.post(f"{self.base_url}/api/orders/execute", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["orderId"])

    def order(self, order_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/api/orders/{order_id}", timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_for_status(self, order_id: str, statuses: set[str], timeout: float = 30.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            last.update(self.order(order_id))
            return dict(last) if last["status"] in statuses else None

        try:
            return wait_until(reached, timeout, what=f"order {order_id} to reach {statuses}")
        except AssertionError:
            raise AssertionError(f"order {order_id} still {last.get('status')}\n{self.log()}") from None

    def wait_executing(self, order_ids: list[str], timeout: float = 20.0) -> None:
        """Until the worker holds some of the orders mid-step (past pending): the moment a
        drill injects its fault, rather than after a fixed time."""
        wait_until(
            lambda: any(self.order(o)["status"] in ("routing", "building", "submitted") for o in order_ids),
            timeout,
            what="the worker to hold orders mid-step",
        )

    def assert_executed_once(self, order_ids: list[str], redis_url: str | None = None) -> None:
        """Each order swapped once on the mock chain, with one swap intent and one
        `submitted` in its log: what a drill checks after its fault, with the audit.
        `redis_url`: where the chain's records are, when the engine reaches Redis another way."""
        chain = redis.Redis.from_url(redis_url or self.env["REDIS_URL"], decode_responses=True)
        layout = RedisLayout(self.env["REDIS_PREFIX"])  # an engine started on another's data uses its prefix
        try:
            for order_id in order_ids:
                swaps = chain.scard(layout.mockchain_swaps(order_id))
                assert swaps == 1, f"{order_id} swapped {swaps} times"
                response = httpx.get(f"{self.base_url}/api/orders/{order_id}/events", timeout=10)
                types = [e["type"] for e in response.json()["events"]]
                assert (types.count("SwapRequested"), types.count("OrderSubmitted")) == (1, 1), (
                    order_id,
                    types,
                )
        finally:
            chain.close()

"""With Redis unreachable the API answers 503 JSON (never a 500 or a traceback) and stores nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.engine import REPO, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def api_without_redis(own_database_url: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {**os.environ, "DATABASE_URL": own_database_url, "REDIS_URL": dead_redis, "PORT": str(port)}
    log = (tmp_path / "api.log").open("wb")  # a file, not a pipe: its retries log and must never block
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "api"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "api.log").read_text()
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 30, interval=0.1, what="the API to start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_an_order_gets_503_and_is_not_stored_when_redis_is_down(
    api_without_redis: str, own_database_url: str
) -> None:
    order = {"userId": "outage", "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
    response = httpx.post(f"{api_without_redis}/api/orders/execute", json=order, timeout=30)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable" and "Traceback" not in response.text
    with psycopg.connect(own_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    ready = httpx.get(f"{api_without_redis}/readyz", timeout=30)
    assert ready.status_code == 503 and "redis" in ready.json()["down"]
    prices = httpx.get(f"{api_without_redis}/api/market/prices", timeout=30)
    assert prices.status_code == 503 and prices.json()["error"]["code"] == "unavailable"

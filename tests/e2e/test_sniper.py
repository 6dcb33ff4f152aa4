"""Sniper orders wait for a token's launch, then execute at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import anyio
import httpx
import pytest

from tests.e2e.engine import REPO, Engine
from tests.e2e.ws_client import collect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def launch_engine(start_engine: Callable[..., Engine]) -> Engine:
    return start_engine()


def launch(engine: Engine, token: str) -> httpx.Response:
    return httpx.post(f"{engine.base_url}/api/market/launches", json={"token": token}, timeout=10)


def test_sniper_waits_for_the_launch_then_executes_and_a_market_order_cannot_trade_the_pair(
    launch_engine: Engine,
) -> None:
    engine = launch_engine
    sniper = engine.submit(orderType="sniper", tokenIn="USDC", tokenOut="LAUNCH", amount="10")
    assert engine.wait_for_status(sniper, {"waiting", "failed"})["status"] == "waiting"
    market = engine.submit(orderType="market", tokenIn="USDC", tokenOut="LAUNCH", amount="10")
    failed = engine.wait_for_status(market, {"failed", "confirmed"})
    assert failed["status"] == "failed" and "no pool" in failed["lastError"]

    response = launch(engine, "LAUNCH")
    assert response.status_code == 200
    assert response.json()["launched"] is True and response.json()["ordersWoken"] >= 1
    assert engine.wait_for_status(sniper, {"confirmed", "failed"})["status"] == "confirmed"
    messages, _ = anyio.run(collect, engine.base_url, sniper)
    assert [m["status"] for m in messages] == [
        "pending",
        "waiting",
        "routing",
        "building",
        "submitted",
        "confirmed",
    ]
    assert messages[1]["details"] == {"token": "LAUNCH"}


def test_launch_from_the_cli_and_bad_launches(launch_engine: Engine) -> None:
    env = {**os.environ, "PORT": str(launch_engine.port), "HOST": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "launch", "LAUNCH"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "LAUNCH" in done.stdout and "orders woken" in done.stdout
    bad = launch(launch_engine, "NOPE")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "token"
    refused = subprocess.run(
        [sys.executable, "-m", "api.cli", "launch", "NOPE"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr

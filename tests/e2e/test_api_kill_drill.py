"""Drill: the API killed with SIGKILL while clients follow their orders on WebSockets.

Each client reconnects (to the restarted API) with the last version it saw, as a
client of the documented protocol does, and in the end holds every event of its
order exactly once, in order, ending with the terminal one.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from tests.e2e.engine import Engine
from tests.e2e.ws_follower import api_process, follow, until_following_mid_step

pytestmark = pytest.mark.e2e


def test_websocket_clients_of_a_killed_api_get_every_event_exactly_once_after_reconnecting(
    start_engine: Callable[..., Engine], own_database_url: str
) -> None:
    engine = start_engine(
        own_database_url, MOCK_LATENCY_SCALE="1", MOCK_SWAP_MIN_MS="2500", MOCK_SWAP_MAX_MS="3500"
    )
    try:
        orders = [engine.submit(userId=f"watcher-{i}", amount="0.5") for i in range(6)]
        streams: dict[str, list[dict[str, Any]]] = {order_id: [] for order_id in orders}

        async def scenario() -> None:
            async with anyio.create_task_group() as tg:
                for order_id, seen in streams.items():
                    tg.start_soon(follow, engine, order_id, seen)
                await until_following_mid_step(streams)
                victim = api_process(engine)
                victim.send_signal(signal.SIGKILL)
                with anyio.fail_after(60):
                    while any(
                        not s or s[-1]["status"] not in ("confirmed", "failed") for s in streams.values()
                    ):
                        await anyio.sleep(0.1)

        anyio.run(scenario)

        for order_id, seen in streams.items():
            log = httpx.get(f"{engine.base_url}/api/orders/{order_id}/events", timeout=10).json()["events"]
            expected = [(e["version"], e["type"]) for e in log if e["type"] != "SwapRequested"]
            assert [(m["version"], m["type"]) for m in seen] == expected, order_id
            assert seen[-1]["status"] == "confirmed"
        assert "the api process was killed by SIGKILL; restarting it" in engine.log_path.read_text(
            errors="replace"
        )
        engine.assert_executed_once(orders)
        assert engine.audit()["divergences"] == []
    finally:
        engine.stop()

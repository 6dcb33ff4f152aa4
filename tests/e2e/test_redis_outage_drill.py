"""Drill: Redis unreachable for 10 s under a running engine with orders in flight.

The engine reaches Redis through a TCP proxy in this test; the outage drops every
connection through it and refuses new ones for 10 s (the data stays in Redis, as it
would across a Redis restart with persistence). Afterwards every accepted order ends
confirmed, none swapped twice, and the log audits clean; POSTs during the outage were
answered 503, never left hanging or 500. The stuck-order re-driver is off: the worker
itself must carry on with every message it held when its connections broke.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import delete_prefix
from tests.e2e.engine import Engine
from tests.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[tuple[CuttableProxy, str]]:
    parts = urlsplit(redis_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    try:
        yield proxy, f"redis://127.0.0.1:{proxy.port}{parts.path or '/0'}"
    finally:
        proxy.close()


def test_orders_in_flight_through_a_10_s_redis_outage_all_end_confirmed_once(
    own_database_url: str,
    redis_url: str,
    redis_proxy: tuple[CuttableProxy, str],
) -> None:
    proxy, proxied_url = redis_proxy
    engine = Engine(
        own_database_url,
        proxied_url,
        MOCK_LATENCY_SCALE="1",
        MOCK_SWAP_MIN_MS="2000",
        MOCK_SWAP_MAX_MS="3000",
        STUCK_AFTER_S="600",
    ).start()
    try:
        orders = [engine.submit(userId=f"outage-{i}", amount="0.5") for i in range(10)]
        engine.wait_executing(orders)
        proxy.cut()
        during: list[int] = []
        started = time.monotonic()
        while time.monotonic() - started < 10:
            try:
                answer = httpx.post(
                    f"{engine.base_url}/api/orders/execute",
                    json={
                        "userId": "during",
                        "orderType": "market",
                        "tokenIn": "SOL",
                        "tokenOut": "USDC",
                        "amount": "1",
                    },
                    timeout=15,
                )
                during.append(answer.status_code)
                if answer.status_code == 200:  # accepted just as Redis went: checked too
                    orders.append(answer.json()["orderId"])
            except httpx.HTTPError:
                during.append(0)
            time.sleep(0.5)
        proxy.restore()

        for order_id in orders:
            order = engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=60)
            assert order["status"] == "confirmed", order
        assert during and set(during) <= {200, 503}, during  # answered, never hung or 500
        assert 503 in during
        engine.assert_executed_once(orders, redis_url=redis_url)
        assert engine.audit(REDIS_URL=redis_url)["divergences"] == []
    finally:
        engine.stop()
        delete_prefix(redis_url, engine.prefix)
        engine.log_path.unlink(missing_ok=True)

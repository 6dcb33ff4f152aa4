"""Drill: the worker killed with SIGKILL while an order is in each step (route, build,
submit, confirm). Every time the order ends confirmed, with one swap request, one
submission and one execution on the mock chain, and the log audits clean.

The heartbeat timeout is ten minutes and re-driving is off: the order can only move on
because the replacement worker takes back the dead one's messages when it boots.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis

from adapters.redis_layout import RedisLayout
from tests.conftest import fresh_database
from tests.e2e.engine import Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def drill_database(server_urls: tuple[str, str]) -> Iterator[str]:
    with fresh_database(server_urls[0]) as url:
        yield url


@pytest.fixture(scope="module")
def drill_engine(drill_database: str, start_engine: Callable[..., Engine]) -> Engine:
    # Each step takes long enough to be caught in: quotes ~1 s (route; build re-quotes a
    # limit order), the swap 3-4 s (a fifth of it sending, the rest confirming).
    return start_engine(
        drill_database,
        MOCK_LATENCY_SCALE="1",
        MOCK_QUOTE_MIN_MS="900",
        MOCK_QUOTE_MAX_MS="1100",
        MOCK_SWAP_MIN_MS="3000",
        MOCK_SWAP_MAX_MS="4000",
        QUOTE_TIMEOUT_MS="5000",
        WORKER_HEARTBEAT_TIMEOUT_MS="600000",
        STUCK_AFTER_S="600",
    )


def event_types(database_url: str, order_id: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT type FROM events WHERE stream_id = %s ORDER BY version", (order_id,))
        return [r[0] for r in rows]


# The moment each step is running, read from the log.
IN_STEP: dict[str, Callable[[list[str]], bool]] = {
    "route": lambda types: types == ["OrderPending"],
    "build": lambda types: types[-1:] == ["OrderRouting"],
    "submit": lambda types: "SwapRequested" in types and "OrderSubmitted" not in types,
    "confirm": lambda types: types[-1:] == ["OrderSubmitted"],
}


@pytest.mark.parametrize("step", list(IN_STEP))
def test_an_order_whose_worker_is_killed_in_a_step_ends_confirmed_once(
    drill_engine: Engine, drill_database: str, redis_url: str, step: str
) -> None:
    engine = drill_engine
    # A limit order met at once: its build step re-quotes, so there is a build to kill.
    overrides = {"orderType": "limit", "limitPrice": "1"} if step == "build" else {}
    order_id = engine.submit(userId=f"drill-{step}", amount="0.5", **overrides)
    wait_until(
        lambda: IN_STEP[step](event_types(drill_database, order_id)),
        30,
        interval=0.02,
        what=f"order {order_id} to be in its {step} step",
    )
    victim = engine.worker_process()
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)

    order = engine.wait_for_status(order_id, {"confirmed", "failed"}, timeout=60)

    assert order["status"] == "confirmed", order
    types = event_types(drill_database, order_id)
    assert (types.count("SwapRequested"), types.count("OrderSubmitted"), types.count("OrderConfirmed")) == (
        1,
        1,
        1,
    )
    chain = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert chain.scard(RedisLayout(engine.prefix).mockchain_swaps(order_id)) == 1  # swapped once
    finally:
        chain.close()
    assert engine.audit()["divergences"] == []

"""Postgres restarted or down under a running engine: no request reuses a dead connection,
a request while it is down is answered 503 at once, and service is back right after.

The engine runs on an embedded Postgres of this test's own (its data under a temporary
folder), so stopping it disturbs nothing else on the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.e2e.engine import Engine
from tests.e2e.own_postgres import OwnPostgres, own_postgres
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(name="own_postgres")
def own_postgres_fixture() -> Iterator[OwnPostgres]:
    with own_postgres() as postgres:
        yield postgres


def post(engine: Engine, **overrides: str) -> httpx.Response:
    body = {"userId": "restart", "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
    return httpx.post(f"{engine.base_url}/api/orders/execute", json={**body, **overrides}, timeout=30)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_after_a_postgres_restart_no_request_fails_on_a_dead_connection(
    start_engine: Callable[..., Engine], own_postgres: OwnPostgres, mode: str
) -> None:
    engine = start_engine(own_postgres.url)
    first = post(engine)
    assert first.status_code == 200
    engine.wait_for_status(first.json()["orderId"], {"confirmed"}, timeout=30)
    time.sleep(1.5)  # idle, so every pooled connection is one the restart will kill

    own_postgres.restart(mode)  # immediate: backends killed, crash recovery at start

    answers = [post(engine, userId=f"after-{i}") for i in range(5)]
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    for answer in answers:
        order = engine.wait_for_status(answer.json()["orderId"], {"confirmed", "failed"}, timeout=30)
        assert order["status"] == "confirmed" and order["attempts"] == 1, order
    stats = httpx.get(f"{engine.base_url}/api/stats/users/after-0", timeout=10)
    assert stats.status_code in (200, 404), stats.text
    engine.assert_executed_once([first.json()["orderId"], *(a.json()["orderId"] for a in answers)])
    assert engine.audit()["divergences"] == []


def test_while_postgres_is_down_posts_are_answered_503_at_once_and_served_again_when_it_is_back(
    start_engine: Callable[..., Engine], own_postgres: OwnPostgres
) -> None:
    engine = start_engine(own_postgres.url)
    assert post(engine).status_code == 200

    own_postgres.stop()
    try:
        timings = []
        for _ in range(3):
            started = time.monotonic()
            answer = post(engine)
            timings.append(time.monotonic() - started)
            assert answer.status_code == 503, answer.text
            assert answer.headers.get("retry-after")
        # Functional bound, far from any noise: the pool's own wait would be 30 s.
        assert max(timings[1:]) < 10, timings
    finally:
        own_postgres.start()

    back = time.monotonic()

    def served() -> bool:
        return post(engine).status_code == 200

    wait_until(served, 30, interval=0.2, what="POSTs to be served again")
    assert time.monotonic() - back < 20

"""The mock market: prices set through the API drive quotes, so limit orders wait, then fill."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import anyio
import httpx
import pytest

from tests.e2e.engine import Engine
from tests.e2e.ws_client import collect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def frozen_market(start_engine: Callable[..., Engine]) -> Engine:
    # Volatility 0: prices move only when the test sets them, a deterministic price path.
    return start_engine(MARKET_VOLATILITY="0")


def set_prices(engine: Engine, **prices: str) -> httpx.Response:
    return httpx.put(f"{engine.base_url}/api/market/prices", json=prices, timeout=10)


def test_limit_order_waits_until_the_market_reaches_its_price_then_fills(frozen_market: Engine) -> None:
    engine = frozen_market
    assert set_prices(engine, SOL="150").status_code == 200
    order_id = engine.submit(orderType="limit", limitPrice="160", amount="1")
    waiting = engine.wait_for_status(order_id, {"waiting"})
    assert Decimal(waiting["bestPrice"]) < 160

    assert set_prices(engine, SOL="170").json()["SOL"] == "170"
    order = engine.wait_for_status(order_id, {"confirmed", "failed", "expired"})
    assert order["status"] == "confirmed"
    assert Decimal(order["executedPrice"]) >= Decimal("160") * Decimal("0.99")  # within the slippage bound
    messages, _ = anyio.run(collect, engine.base_url, order_id)
    statuses = [m["status"] for m in messages]
    waits = statuses.count("waiting")
    assert waits >= 1
    assert statuses == ["pending"] + ["waiting"] * waits + ["routing", "building", "submitted", "confirmed"]


def test_market_price_moves_quotes(frozen_market: Engine) -> None:
    engine = frozen_market
    set_prices(engine, SOL="300")
    order_id = engine.submit(amount="1")
    order = engine.wait_for_status(order_id, {"confirmed", "failed"})
    assert all(Decimal("290") < Decimal(q["price"]) < Decimal("310") for q in order["quotes"])
    set_prices(engine, SOL="150")


@pytest.mark.parametrize(
    ("body", "field"), [({"DOGE": "1"}, "DOGE"), ({"SOL": "-5"}, "SOL"), ({"SOL": "abc"}, "SOL")]
)
def test_bad_market_prices_get_422_naming_the_token(
    frozen_market: Engine, body: dict[str, str], field: str
) -> None:
    response = httpx.put(f"{frozen_market.base_url}/api/market/prices", json=body, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field

"""The mock market's operator endpoints: prices and token launches."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, get, post, put

from api.context import ApiDependency
from api.openapi_docs import BEARER, LAUNCH_BODY, PRICES_BODY, documented, errors, ok
from api.order_request import parse_launch_request, parse_market_prices
from api.schemas import LaunchResult, MarketPrices

log = logging.getLogger("orderengine.api")


async def _current_prices(api: ApiDependency) -> MarketPrices:
    prices = await api.engine.market.usd_prices()
    return {symbol: str(price) for symbol, price in prices.items()}


@get(
    "/api/market/prices",
    security=BEARER,
    responses={200: ok(MarketPrices, "prices"), **errors(401, 503)},
    operation_class=documented(),
)
async def market_prices(api: ApiDependency) -> MarketPrices:
    """The mock market's current USD price of each token."""
    return await _current_prices(api)


@put(
    "/api/market/prices",
    status_code=200,
    security=BEARER,
    responses={200: ok(MarketPrices, "prices"), **errors(400, 401, 413, 422, 503)},
    operation_class=documented(body=PRICES_BODY),
)
async def set_market_prices(request: Request[Any, Any, Any], api: ApiDependency) -> MarketPrices:
    """Set USD prices in the mock market (operators and tests: a deterministic price path)."""
    prices = parse_market_prices(await request.body())
    await api.engine.market.set_prices(prices)
    log.info("market prices set", extra={"prices": {k: str(v) for k, v in prices.items()}})
    return await _current_prices(api)


@post(
    "/api/market/launches",
    status_code=200,
    security=BEARER,
    responses={200: ok(LaunchResult, "launch"), **errors(400, 401, 413, 422, 503)},
    operation_class=documented(body=LAUNCH_BODY),
)
async def launch(request: Request[Any, Any, Any], api: ApiDependency) -> LaunchResult:
    """Launch a token in the mock market: its pools open and its sniper orders fire."""
    token = parse_launch_request(await request.body())
    launched, woken = await api.engine.waiting.launch(token)
    return LaunchResult(token=token, launched=launched, ordersWoken=woken)


MARKET_ROUTES = [market_prices, set_market_prices, launch]

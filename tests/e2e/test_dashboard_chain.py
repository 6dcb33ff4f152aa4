"""The dashboard on chain (USE_REAL_DEVNET=true, against the local chain of
tests/e2e/test_onchain.py): there is no mock market, so each pair's chart is drawn from
the prices the engine quoted for its orders, and the mock's launch control is gone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.browser import launch, skip_without_chromium
from tests.e2e.engine import Engine

# The local chain and an engine trading on it, as the on-chain end-to-end tests have them.
from tests.e2e.test_onchain import chain_database, chain_engine, localnet  # noqa: F401

pytestmark = pytest.mark.e2e

skip_without_chromium()
from playwright import sync_api  # noqa: E402  (after the skip: the dev extra may be missing)


@pytest.fixture(scope="module")
def page(chain_engine: Engine) -> Iterator[Any]:  # noqa: F811
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{chain_engine.base_url}/")
        page.wait_for_selector("body[data-ready=true]")
        page.fill("#session-userId", "chain-watcher")
        page.click("#session button[type=submit]")
        page.wait_for_selector("#connection[data-state=live]")
        page.set_default_timeout(30_000)
        yield page
        browser.close()
        assert not errors, f"the page raised: {errors}"


def test_on_chain_the_chart_shows_the_price_the_engine_quoted_and_no_mock_launch(
    page: Any,
    chain_engine: Engine,  # noqa: F811
) -> None:
    page.wait_for_selector("#health [data-market=chain]")
    assert page.locator("#launch-box").is_hidden()  # launches belong to the mock market
    order_id = chain_engine.submit(userId="chain-watcher", amount="0.5", slippageTolerance="0.01")
    page.wait_for_selector(f'#board tr[data-order-id="{order_id}"][data-status="confirmed"]')
    events = httpx.get(f"{chain_engine.base_url}/api/orders/{order_id}/events", timeout=10).json()["events"]
    routing = next(e["data"] for e in events if e["type"] == "OrderRouting")
    chosen = next(q for q in routing["quotes"] if q["dex"] == routing["chosen_dex"])
    caption = page.inner_text('figure[data-pair="SOL/USDC"] figcaption')
    shown = re.match(r"SOL/USDC ([\d,.]+) quoted", caption)
    assert shown, caption
    # The caption's price is the chosen quote's, to the six significant digits it is shown with.
    quoted = Decimal(chosen["price"])
    assert abs(Decimal(shown.group(1).replace(",", "")) - quoted) <= quoted * Decimal("1e-5"), (
        caption,
        chosen,
    )

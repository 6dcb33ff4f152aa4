"""The dashboard at `/`, driven in headless Chromium against the real engine (API keys on,
so the page's key reaches the API on HTTP and on its WebSocket).

Debian's /usr/bin/chromium is the browser: Playwright's Python client drives it and never
downloads one of its own. The tests share one engine and one page, in the order a person
would use it; screenshots at a laptop's and a phone's width go to .data/screenshots/.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.browser import launch, skip_without_chromium
from tests.conftest import fresh_database
from tests.e2e.engine import REPO, Engine
from tests.e2e.ws_follower import api_process
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

skip_without_chromium()
from playwright import sync_api  # noqa: E402  (after the skip: the dev extra may be missing)

KEY = "dashboard-key-0123456789abcdef"
USER = "dash-user"
OPERATOR_KEY = "dashboard-operator-0123456789abcdef"
OTHER_USER = "dash-other-user"
SCREENSHOTS = REPO / ".data" / "screenshots"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def dashboard_database(server_urls: tuple[str, str]) -> Iterator[str]:
    # A database of this module's own: the operator's every-order board replays the whole
    # log, which in the full suite would otherwise hold every other test's orders.
    with fresh_database(server_urls[0]) as url:
        yield url


@pytest.fixture(scope="module")
def engine(start_engine: Callable[..., Engine], dashboard_database: str) -> Engine:
    return start_engine(dashboard_database, API_KEYS=f"{KEY}:{USER}", OPERATOR_KEYS=OPERATOR_KEY)


@pytest.fixture(scope="module")
def page(engine: Engine) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport=LAPTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{engine.base_url}/")
        page.wait_for_selector("body[data-ready=true]")
        page.fill("#session-userId", USER)
        page.fill("#session-key", KEY)
        page.click("#session button[type=submit]")
        page.wait_for_selector("#connection[data-state=live]", timeout=WAIT_MS)
        page.set_default_timeout(WAIT_MS)
        yield page
        browser.close()
        assert not errors, f"the page raised: {errors}"


def headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def logged_statuses(engine: Engine, order_id: str) -> list[str]:
    """The statuses of the order's events in the log, as its stream sends them (read with
    the operator key, which sees every user's orders)."""
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    events = httpx.get(f"{engine.base_url}/api/orders/{order_id}/events", headers=operator, timeout=10)
    shown = [e for e in events.json()["events"] if e["type"] != "SwapRequested"]
    return ["retrying" if e["type"] == "RetryScheduled" else _STATUS[e["type"]] for e in shown]


_STATUS = {
    "OrderPending": "pending",
    "OrderWaiting": "waiting",
    "OrderAwaitingLaunch": "waiting",
    "OrderRouting": "routing",
    "OrderBuilding": "building",
    "OrderSubmitted": "submitted",
    "SwapReissued": "submitted",
    "OrderConfirmed": "confirmed",
    "OrderFailed": "failed",
    "OrderCancelled": "cancelled",
    "OrderExpired": "expired",
}


def place(page: Any, order_type: str = "market", **fields: str) -> str:
    """Fill the form and submit it; the id of the order the API accepted."""
    page.check(f"#order-form input[name=orderType][value={order_type}]")
    for name, value in fields.items():
        if name in ("tokenIn", "tokenOut"):
            page.select_option(f"#{name}", value)
        else:
            page.fill(f"#{name}", value)
    previous = page.get_attribute("#order-result", "data-order-id")
    page.click("#order-form button[type=submit]")
    page.wait_for_function(
        "prev => { const id = document.querySelector('#order-result').dataset.orderId;"
        " return id && id !== prev; }",
        arg=previous,
    )
    return str(page.get_attribute("#order-result", "data-order-id"))


def place_as_operator(engine: Engine, user: str) -> str:
    """A market order for `user`, placed through the API with the operator key."""
    body = {"userId": user, "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    answer = httpx.post(f"{engine.base_url}/api/orders/execute", json=body, headers=operator, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["orderId"])


def row(order_id: str) -> str:
    return f'#board tr[data-order-id="{order_id}"]'


def wait_for_row_status(page: Any, order_id: str, status: str) -> None:
    page.wait_for_selector(f'{row(order_id)}[data-status="{status}"]')


def test_three_orders_placed_from_the_page_reach_confirmed_on_the_board_in_event_order(
    page: Any, engine: Engine
) -> None:
    market = place(page, "market", tokenIn="SOL", tokenOut="USDC", amount="1.5")
    executable_limit = place(
        page, "limit", tokenIn="USDC", tokenOut="SOL", amount="20", limitPrice="0.000001"
    )
    sniper = place(page, "sniper", tokenIn="USDC", tokenOut="LAUNCH", amount="5")
    wait_for_row_status(page, sniper, "waiting")
    page.click("#launch-button")  # the mock market's launch: the sniper order fires
    page.wait_for_selector("#launch-result:has-text('launched')")
    for order_id in (market, executable_limit, sniper):
        wait_for_row_status(page, order_id, "confirmed")
        history = str(page.get_attribute(row(order_id), "data-history")).split()
        assert history == logged_statuses(engine, order_id), order_id  # every event once, in order
        assert page.locator(f"{row(order_id)} .c-tx a").get_attribute("href")  # the explorer link
        assert page.locator(f"{row(order_id)} .c-quotes strong").count() == 1  # the chosen venue
    assert "nets" in page.inner_text(f"{row(market)} .c-quotes .reason")  # and why
    # The health panel counts the three starts against the rate (it refreshes by itself).
    page.wait_for_function("() => document.querySelector('#m-Starts-in-the-last-minute')?.value >= 3")


def test_a_waiting_limit_order_draws_its_line_on_the_chart_and_is_cancelled_from_its_row(
    page: Any, engine: Engine
) -> None:
    waiting = place(page, "limit", tokenIn="SOL", tokenOut="USDC", amount="2", limitPrice="1000")
    wait_for_row_status(page, waiting, "waiting")
    # A horizontal line has no height, which Playwright counts as invisible: attached is the check.
    line = f'figure[data-pair="SOL/USDC"] line[data-limit-order="{waiting}"]'
    page.wait_for_selector(line, state="attached")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-laptop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
    page.set_viewport_size(LAPTOP)
    page.click(f"{row(waiting)} button.cancel")
    wait_for_row_status(page, waiting, "cancelled")
    assert page.locator(f"{row(waiting)} button.cancel").is_hidden()  # nothing left to cancel
    page.wait_for_selector(f'line[data-limit-order="{waiting}"]', state="detached")
    answer = httpx.get(f"{engine.base_url}/api/orders/{waiting}", headers=headers(), timeout=10)
    assert answer.json()["status"] == "cancelled"


def test_an_order_is_placed_and_cancelled_with_the_keyboard_alone(page: Any) -> None:
    page.select_option("#tokenIn", "SOL")  # the pair is set up; the rest is keys only
    page.select_option("#tokenOut", "USDC")
    page.focus("#order-form input[name=orderType][value=market]")
    page.keyboard.press("ArrowRight")  # radio group: market -> limit
    assert page.is_checked("#order-form input[name=orderType][value=limit]")
    page.focus("#amount")
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.keyboard.press("Tab")  # on to the limit price, the next field
    assert page.evaluate("document.activeElement.id") == "limitPrice"
    page.keyboard.press("Control+A")
    page.keyboard.type("5000")
    previous = page.get_attribute("#order-result", "data-order-id")
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_function(
        "prev => { const id = document.querySelector('#order-result').dataset.orderId;"
        " return id && id !== prev; }",
        arg=previous,
    )
    order_id = str(page.get_attribute("#order-result", "data-order-id"))
    wait_for_row_status(page, order_id, "waiting")
    page.focus(f"{row(order_id)} button.cancel")
    page.keyboard.press("Enter")
    wait_for_row_status(page, order_id, "cancelled")


def test_the_api_validation_error_appears_beside_the_field_it_names(page: Any) -> None:
    before = page.locator("#board tbody tr").count()
    page.check("#order-form input[name=orderType][value=market]")
    page.fill("#amount", "-1")
    page.click("#order-form button[type=submit]")
    page.wait_for_selector("#amount-error:has-text('amount must be')")
    assert page.get_attribute("#amount", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "amount"  # focus goes to the field to fix
    page.fill("#amount", "1")
    assert page.locator("#board tbody tr").count() == before  # nothing was placed


def test_an_orders_page_shows_its_timeline_and_the_slider_folds_it_to_each_version(
    page: Any, engine: Engine
) -> None:
    order_id = place(page, "market", tokenIn="SOL", tokenOut="USDC", amount="0.5")
    wait_for_row_status(page, order_id, "confirmed")
    page.click(f"{row(order_id)} a.order-link")
    page.wait_for_selector("#order-view:not([hidden]) #timeline li")
    page.wait_for_selector("#version-caption[data-status=confirmed]")
    logged = httpx.get(f"{engine.base_url}/api/orders/{order_id}/events", headers=headers(), timeout=10)
    # Every event of the log, SwapRequested included: the page shows the log, not the stream.
    assert page.locator("#timeline li").count() == len(logged.json()["events"])
    page.focus("#version-slider")
    page.keyboard.press("Home")  # keyboard only: the first version
    page.wait_for_selector("#version-caption[data-version='1'][data-status=pending]")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#version-caption[data-version='2'][data-status=routing]")
    assert page.inner_text("#state dd[data-key=chosenDex]")  # routing chose a venue by version 2
    assert page.locator("#state dd[data-key=txHash]").count() == 0  # no transaction yet
    page.click("text=Back to the board")
    page.wait_for_selector("#board-view:not([hidden])")


def test_the_board_resumes_after_the_api_restarts_with_nothing_missed_or_repeated(
    page: Any, engine: Engine
) -> None:
    order_id = httpx.post(
        f"{engine.base_url}/api/orders/execute",
        json={"orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"},
        headers=headers(),
        timeout=10,
    ).json()["orderId"]
    # At once: the worker carries the order on while the API is down, so the page must
    # fetch the events it missed when it resumes.
    api_process(engine).send_signal(signal.SIGKILL)
    page.wait_for_selector("#connection[data-state=reconnecting]")
    wait_until(lambda: _healthy(engine), 30, interval=0.1, what="the restarted API")
    page.wait_for_selector("#connection[data-state=live]")
    wait_for_row_status(page, order_id, "confirmed")
    time.sleep(0.3)  # any repeat the resumed stream sent would have arrived by now
    for tr in page.locator("#board tbody tr").all():
        shown = str(tr.get_attribute("data-order-id"))
        assert str(tr.get_attribute("data-history")).split() == logged_statuses(engine, shown), shown
    assert page.evaluate("window.dashboard.stream.reconnects") >= 1


def _healthy(engine: Engine) -> bool:
    try:
        return httpx.get(f"{engine.base_url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_operator_sees_another_users_order_reach_confirmed_on_the_every_order_board(
    page: Any, engine: Engine
) -> None:
    assert page.locator("#all-orders-control").is_hidden()  # a user's key: no such switch
    page.fill("#session-key", OPERATOR_KEY)
    page.click("#session button[type=submit]")
    page.wait_for_selector("#all-orders-control:not([hidden])")
    page.check("#all-orders")
    page.wait_for_selector("#board.all")
    page.wait_for_selector("#connection[data-state=live]")
    order_id = place_as_operator(engine, OTHER_USER)
    wait_for_row_status(page, order_id, "confirmed")
    assert page.inner_text(f"{row(order_id)} .c-user") == OTHER_USER
    assert page.locator("#board thead th.c-user").is_visible()  # the user column is shown
    page.wait_for_selector(f'#board tr[data-user-id="{USER}"]', state="attached")  # and the user's own
    # A reason's long decimals are rounded to 6 significant digits for reading; its title
    # keeps them exact.
    reason = page.locator(f"{row(order_id)} .c-quotes .reason")
    shown, exact = reason.inner_text(), str(reason.get_attribute("title"))
    assert all(significant_digits(n) <= 6 for n in re.findall(r"\d+\.\d+", shown)), shown
    assert any(significant_digits(n) > 6 for n in re.findall(r"\d+\.\d+", exact)), exact


def significant_digits(number: str) -> int:
    """1.50 has 3, 0.00197445 has 6, 147.471038 has 9."""
    return len(number.replace(".", "").lstrip("0"))


def test_a_long_board_keeps_only_the_rows_in_view_and_scrolls_to_every_order(
    page: Any, engine: Engine
) -> None:
    # Past 60 orders the board windows its rows (a thousand stay smooth): the DOM holds
    # those in view, the models hold every order, and scrolling brings any row back.
    many = 66  # with the orders before it, more than 60 and fewer than the 100 starts a minute
    placed = [place_as_operator(engine, OTHER_USER) for _ in range(many)]
    page.wait_for_function(
        "ids => ids.every(id => window.dashboard.board.order(id)?.status === 'confirmed')", arg=placed
    )
    size = page.evaluate("window.dashboard.board.size")
    in_dom = page.locator("#board tbody tr[data-order-id]").count()
    assert size >= many + 3 and in_dom < size, (size, in_dom)
    oldest = page.evaluate("window.dashboard.board.ids().at(-1)")
    assert page.locator(row(oldest)).count() == 0  # far below the view: not in the DOM
    page.evaluate("document.querySelector('.table-scroll').scrollTop = 1e9")
    page.wait_for_selector(row(oldest), state="attached")  # scrolled to the end: it is there
    newest = placed[-1]
    page.evaluate("document.querySelector('.table-scroll').scrollTop = 0")
    wait_for_row_status(page, newest, "confirmed")
    for order_id in (newest, placed[0]):  # every event once, in order, in the models too
        assert page.evaluate("id => window.dashboard.board.order(id).history", order_id) == logged_statuses(
            engine, order_id
        )


_ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (!document.querySelector("main")) problems.push("no <main> landmark");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const named = el.labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!named) problems.push(`unlabelled control: ${el.id || el.name}`);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!(el.innerText.trim() || el.getAttribute("aria-label") || el.title)) {
      problems.push(`control without a name: ${el.outerHTML.slice(0, 80)}`);
    }
  }
  // WCAG 2 contrast of every visible text against the first opaque background behind it.
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const rgba = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll("body *")) {
    if (el instanceof SVGElement || !el.getClientRects().length) continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.closest(".sr-only")) continue;
    const [hi, lo] = [luminance(rgba(style.color)), luminance(background(el))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const text = el.textContent.trim().slice(0, 40);
      problems.push(`contrast ${ratio.toFixed(2)}: ${el.tagName}.${el.className} "${text}"`);
    }
  }
  return problems;
}"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_control_is_labelled_and_every_text_has_enough_contrast(
    page: Any, viewport: dict[str, int]
) -> None:
    page.set_viewport_size(viewport)
    try:
        assert page.evaluate(_ACCESSIBILITY_PROBLEMS) == []
    finally:
        page.set_viewport_size(LAPTOP)

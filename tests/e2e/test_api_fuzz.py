"""Fuzz the real engine from its own OpenAPI document (schemathesis): for every operation,
generated valid and invalid requests must get no 5xx and only answers the document
describes (status code, content type, headers, body schema).

Runs against an engine with its own database and Redis prefix, so the orders, prices
and launches it makes disturb no other test. Bounded: a few dozen examples per
operation and mode, no shrinking, well under a minute in all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import httpx
import pytest
import schemathesis
import websockets
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import fresh_database
from tests.e2e.engine import Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

KEY = "fuzz-key-0123456789abcdef"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25
ORDER = {"userId": "fuzzer", "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
# Fewer worker threads (one Postgres connection each): CI shares one server with other engines.
SMALL = {"WORKER_THREADS": "4"}


@pytest.fixture(scope="module")
def fuzz_database(server_urls: tuple[str, str]) -> Iterator[str]:
    # Its own database: the fuzz leaves waiting limit orders that other engines' schedulers
    # (which share the session database) would otherwise keep re-quoting.
    with fresh_database(server_urls[0]) as url:
        yield url


@pytest.fixture(scope="module")
def open_engine(fuzz_database: str, start_engine: Callable[..., Engine]) -> Engine:
    return _ready(start_engine(database=fuzz_database, **SMALL))


@pytest.fixture(scope="module")
def keyed_engine(fuzz_database: str, start_engine: Callable[..., Engine], open_engine: Engine) -> Engine:
    # One engine at a time: every engine holds a dozen Postgres connections of a shared server.
    open_engine.stop()
    return _ready(start_engine(database=fuzz_database, API_KEYS=f"{KEY}:fuzzer", **SMALL))


def _ready(engine: Engine) -> Engine:
    """A 503 from /readyz is only a finding once the worker and scheduler are up."""
    wait_until(
        lambda: httpx.get(f"{engine.base_url}/readyz", timeout=5).status_code == 200,
        30,
        what="the engine's /readyz",
    )
    return engine


def _fuzz(
    engine: Engine,
    headers: dict[str, str],
    *,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    path_parameters: dict[str, Any] | None = None,
    max_examples: int = EXAMPLES_PER_OPERATION,
) -> list[str]:
    """Runs every operation of the served document; returns one line per failing operation."""
    schema = schemathesis.openapi.from_url(f"{engine.base_url}/schema/openapi.json", timeout=10)
    failures: list[str] = []
    answered: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if path_parameters is not None and "{order_id}" not in operation.path:
            continue
        takes_input = any(
            (operation.path_parameters, operation.query, operation.headers, list(operation.body))
        )
        for mode in modes:
            if mode is GenerationMode.NEGATIVE and not takes_input:
                continue  # nothing to make invalid
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            try:
                _run_cases(strategy, engine.base_url, headers, max_examples, answered)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports a BaseExceptionGroup
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    print("\n".join(f"{count:4d} × {answer}" for answer, count in sorted(answered.items())))
    return failures


def _run_cases(
    strategy: Any, base_url: str, headers: dict[str, str], max_examples: int, answered: Counter[str]
) -> None:
    """Sends `max_examples` generated cases; raises on the first answer that fails a check."""

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: CI must not flake
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, don't minimise
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)
        answered[f"{case.operation.label} {response.status_code}"] += 1

    run()


def _order(engine: Engine, headers: dict[str, str], **fields: str) -> str:
    response = httpx.post(
        f"{engine.base_url}/api/orders/execute", json={**ORDER, **fields}, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return str(response.json()["orderId"])


def test_no_operation_answers_5xx_or_off_schema_when_open(open_engine: Engine) -> None:
    failures = _fuzz(open_engine, {})
    assert not failures, "\n\n".join(failures)


def test_existing_orders_are_answered_as_documented(open_engine: Engine) -> None:
    # Random UUIDs name no order: fetch and cancel real ones too, in several states.
    confirmed = _order(open_engine, {})
    open_engine.wait_for_status(confirmed, {"confirmed", "failed"})
    waiting = _order(open_engine, {}, orderType="limit", limitPrice="1000000")
    open_engine.wait_for_status(waiting, {"waiting"})
    for order_id in (confirmed, waiting):
        failures = _fuzz(
            open_engine,
            {},
            modes=(GenerationMode.POSITIVE,),
            path_parameters={"order_id": order_id},
            max_examples=5,
        )
        assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        # Each was answered 200 and then stopped the orders projection for every later order
        # (Postgres `numeric` cannot hold it), or crashed the workers' arithmetic.
        ("/api/orders/execute", {"amount": "1e-100000"}, "amount"),
        ("/api/orders/execute", {"amount": "0." + "0" * 20_000 + "1"}, "amount"),
        ("/api/orders/execute", {"orderType": "limit", "limitPrice": "1e-100000"}, "limitPrice"),
        ("/api/orders/execute", {"orderType": "limit", "limitPrice": "1e200000"}, "limitPrice"),
        ("/api/orders/execute", {"slippageTolerance": "0." + "0" * 20_000 + "1"}, "slippageTolerance"),
        ("/api/market/prices", {"SOL": "1e-999999"}, "SOL"),
        ("/api/market/prices", {"SOL": "1e999999999"}, "SOL"),
        # Answered 500: Postgres text cannot hold NUL.
        ("/api/orders/execute", {"userId": "a\x00b"}, "userId"),
    ],
)
def test_inputs_the_fuzz_found_are_refused_with_422(
    open_engine: Engine, path: str, body: dict[str, str], field: str
) -> None:
    if path == "/api/orders/execute":
        order = {
            "userId": "fuzzer",
            "orderType": "market",
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amount": "1",
        }
        response = httpx.post(f"{open_engine.base_url}{path}", json={**order, **body}, timeout=10)
    else:
        response = httpx.put(f"{open_engine.base_url}{path}", json=body, timeout=10)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_listing_by_a_user_id_with_nul_is_refused_with_422(open_engine: Engine) -> None:
    response = httpx.get(f"{open_engine.base_url}/api/orders", params={"userId": "\x00"}, timeout=10)
    assert response.status_code == 422 and response.json()["error"]["field"] == "userId"


def test_the_read_model_keeps_up_after_the_fuzz(open_engine: Engine) -> None:
    # Listing reads only the projection (no fallback to the log): a poisoned projection shows here.
    order_id = _order(open_engine, {}, userId="after-fuzz")

    def listed() -> bool:
        page = httpx.get(f"{open_engine.base_url}/api/orders", params={"userId": "after-fuzz"}, timeout=10)
        return order_id in {o["orderId"] for o in page.json()["orders"]}

    wait_until(listed, 15, what="the new order in the orders projection")


# --- path parameters and WebSocket query parameters with any text ----------------------------
# schemathesis generates path values it can put in a URL and does not know the WebSocket
# query at all: here each gets any text (NUL and other control characters, other scripts'
# digits, huge numbers, kilobytes), percent-encoded, and must get a documented 4xx or, on a
# socket, a stream or a 1008 with a reason; never a 5xx, a 1011 or an invalid input left open.

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
ANY_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=12),  # C0/C1 controls, ASCII
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", " ", "\x00", "a\x00b", "²", "١", "1e30", "1_0", "u" * 200, "2147483648"]),
)
UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
IDENTIFIER = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,128}")


def _whole(raw: str | None, maximum: int) -> bool:
    return raw is None or (raw.isascii() and raw.isdigit() and int(raw) <= maximum)


def _valid_user(raw: str) -> bool:
    return IDENTIFIER.fullmatch(raw) is not None and bool(raw.strip())


def _expected_close(query: dict[str, str], known_order: str) -> set[int | None]:
    """What /ws may end with for this query, by the documented rules (an independent oracle:
    it does not import the engine's): None is "still open after the wait"."""
    order, user = query.get("orderId"), query.get("userId")
    if order is not None or user is None:
        if order is None or UUID.fullmatch(order) is None:
            return {1008}
        if not _whole(query.get("fromVersion", query.get("lastEventId")), 2**31 - 1):
            return {1008}
        return {1000} if order.lower() == known_order else {1008}  # the known order has ended
    if not _valid_user(user) or not _whole(query.get("fromPosition", query.get("lastEventId")), 2**63 - 1):
        return {1008}
    return {None}  # a user's stream never closes by itself


async def _ws_outcome(url: str, wait_s: float) -> tuple[int | None, str | None]:
    async with websockets.connect(url, open_timeout=10) as ws:
        try:
            with anyio.fail_after(wait_s):
                async for _ in ws:
                    pass
        except TimeoutError:
            return None, None
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason


def test_websocket_query_parameters_get_a_stream_or_a_1008_with_a_reason(open_engine: Engine) -> None:
    known = _order(open_engine, {})
    open_engine.wait_for_status(known, {"confirmed", "failed"})
    answered: Counter[int | None] = Counter()
    number = st.one_of(st.integers(min_value=0, max_value=2**64).map(str), ANY_TEXT)
    queries = st.fixed_dictionaries(
        {},
        optional={
            "orderId": st.one_of(st.sampled_from([known, known.upper()]), st.uuids().map(str), ANY_TEXT),
            "userId": st.one_of(st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True), ANY_TEXT),
            "fromVersion": number,
            "fromPosition": number,
            "lastEventId": number,
        },
    )

    @FUZZ
    @given(query=queries)
    def run(query: dict[str, str]) -> None:
        url = open_engine.base_url.replace("http://", "ws://") + "/ws?" + urlencode(query, quote_via=quote)
        expected = _expected_close(query, known)
        code, reason = anyio.run(_ws_outcome, url, 0.5 if None in expected else 5.0)
        answered[code] += 1
        assert code in expected, (query, code, reason)
        if code == 1008:
            assert reason, query

    run()
    print(dict(answered))
    assert "websocket stream failed" not in open_engine.log_path.read_text(errors="replace")


@pytest.mark.parametrize(
    ("method", "template", "statuses"),
    [
        ("GET", "/api/orders/{}", {404}),
        ("GET", "/api/orders/{}/events", {404}),
        ("DELETE", "/api/orders/{}", {404}),
        ("GET", "/api/stats/users/{}", {200, 404}),
        ("GET", "/api/stats/pairs/{}/USDC", {200, 404}),
        ("GET", "/api/stats/pairs/SOL/{}", {200, 404}),
    ],
)
def test_path_parameters_with_any_text_get_a_documented_answer(
    open_engine: Engine, method: str, template: str, statuses: set[int]
) -> None:
    with httpx.Client(base_url=open_engine.base_url, timeout=10) as client:

        @FUZZ
        @given(value=ANY_TEXT.filter(lambda v: v not in ("", ".", "..")))
        def run(value: str) -> None:
            response = client.request(method, template.format(quote(value, safe="")))
            assert response.status_code in statuses, (value, response.status_code, response.text)
            if response.status_code == 404:
                error = response.json()["error"]
                assert error["code"] == "not_found" and error["message"], value

        run()


# Last: starting the keyed engine stops the open one.
def test_no_operation_answers_5xx_or_off_schema_with_an_api_key(keyed_engine: Engine) -> None:
    failures = _fuzz(keyed_engine, {"Authorization": f"Bearer {KEY}"}, modes=(GenerationMode.POSITIVE,))
    assert not failures, "\n\n".join(failures)


def test_requests_without_a_key_get_the_documented_401(keyed_engine: Engine) -> None:
    failures = _fuzz(keyed_engine, {}, modes=(GenerationMode.POSITIVE,), max_examples=5)
    assert not failures, "\n\n".join(failures)

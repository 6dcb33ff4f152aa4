"""Fuzz the real engine from its own OpenAPI document (schemathesis): for every operation,
generated valid and invalid requests must get no 5xx and only answers the document
describes (status code, content type, headers, body schema).

Runs against an engine with its own database and Redis prefix, so the orders, prices
and launches it makes disturb no other test. Bounded: a few dozen examples per
operation and mode, no shrinking, well under a minute in all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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


# Last: starting the keyed engine stops the open one.
def test_no_operation_answers_5xx_or_off_schema_with_an_api_key(keyed_engine: Engine) -> None:
    failures = _fuzz(keyed_engine, {"Authorization": f"Bearer {KEY}"}, modes=(GenerationMode.POSITIVE,))
    assert not failures, "\n\n".join(failures)


def test_requests_without_a_key_get_the_documented_401(keyed_engine: Engine) -> None:
    failures = _fuzz(keyed_engine, {}, modes=(GenerationMode.POSITIVE,), max_examples=5)
    assert not failures, "\n\n".join(failures)

"""The OpenAPI document at /schema: every route, its statuses, examples that are true."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, get_args

import msgspec
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

import api.dashboard_schemas as dashboard_schemas
import api.schemas as schemas
from adapters.settings import Settings
from api.app import create_app
from api.auth import _UNAUTHORIZED
from api.order_request import (
    OrderListQuery,
    OrderStatus,
    parse_launch_request,
    parse_list_query,
    parse_market_prices,
    parse_order_request,
)
from domain.order import TRANSITIONS
from projections.order_views import _FIELDS

PROTECTED = [
    ("POST", "/api/orders/execute"),
    ("GET", "/api/orders/{order_id}"),
    ("GET", "/orders/{order_id}"),
    ("DELETE", "/api/orders/{order_id}"),
    ("GET", "/api/orders"),
    ("GET", "/api/orders/{order_id}/events"),
    ("GET", "/api/market/prices"),
    ("PUT", "/api/market/prices"),
    ("POST", "/api/market/launches"),
    ("GET", "/api/stats/users/{user_id}"),
    ("GET", "/api/stats/pairs"),
    ("GET", "/api/stats/pairs/{token_in}/{token_out}"),
    ("GET", "/api/engine/health"),
    ("GET", "/api/orders/{order_id}/state"),
    ("GET", "/api/me"),
]
STATUSES = {
    ("POST", "/api/orders/execute"): {200, 400, 401, 409, 413, 422, 429, 503},
    ("GET", "/api/orders/{order_id}"): {200, 401, 404, 503},
    ("GET", "/orders/{order_id}"): {200, 401, 404, 503},
    ("DELETE", "/api/orders/{order_id}"): {200, 401, 404, 409, 503},
    ("GET", "/api/orders"): {200, 401, 403, 422, 503},
    ("GET", "/api/orders/{order_id}/events"): {200, 401, 404, 503},
    ("GET", "/api/market/prices"): {200, 401, 503},
    ("PUT", "/api/market/prices"): {200, 400, 401, 413, 422, 503},
    ("POST", "/api/market/launches"): {200, 400, 401, 413, 422, 503},
    ("GET", "/api/stats/users/{user_id}"): {200, 401, 404, 503},
    ("GET", "/api/stats/pairs"): {200, 401, 503},
    ("GET", "/api/stats/pairs/{token_in}/{token_out}"): {200, 401, 404, 503},
    ("GET", "/healthz"): {200},
    ("GET", "/readyz"): {200, 503},
    ("GET", "/api/engine/health"): {200, 401, 503},
    ("GET", "/api/orders/{order_id}/state"): {200, 401, 404, 422, 503},
    ("GET", "/api/me"): {200, 401},
}


@pytest.fixture(scope="module")
def app() -> Litestar:
    return create_app(Settings())  # builds routes only: nothing connects before the lifespan


@pytest.fixture(scope="module")
def document(app: Litestar) -> dict[str, Any]:
    # Encoded as /schema/openapi.json serves it (examples are Structs until encoded).
    return msgspec.json.decode(msgspec.json.encode(app.openapi_schema.to_schema()))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield method.upper(), path, operation


def test_every_http_route_of_the_app_is_documented(app: Litestar, document: dict[str, Any]) -> None:
    served = {
        (method, route.path_format)
        for route in app.routes
        if isinstance(route, HTTPRoute) and not route.path.startswith("/schema")
        for handler in route.route_handlers
        if handler.include_in_schema
        for method in handler.http_methods
        if method not in {"HEAD", "OPTIONS"}
    }
    documented = {(method, path) for method, path, _ in operations(document)}
    assert served == documented
    assert documented == set(STATUSES)


@pytest.mark.parametrize(("method", "path"), sorted(STATUSES))
def test_each_operation_documents_exactly_the_statuses_it_can_answer(
    document: dict[str, Any], method: str, path: str
) -> None:
    operation = document["paths"][path][method.lower()]
    assert {int(status) for status in operation["responses"]} == STATUSES[(method, path)]


def test_every_error_response_is_the_error_body_with_an_example(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if path == "/readyz" or int(status) < 400:
                continue
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            assert media["examples"], (method, path, status)


def test_401_and_429_document_their_headers(document: dict[str, Any]) -> None:
    execute = document["paths"]["/api/orders/execute"]["post"]["responses"]
    assert "Retry-After" in execute["429"]["headers"]
    assert "WWW-Authenticate" in execute["401"]["headers"]


def test_bearer_auth_covers_everything_but_the_probes(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for method, path, operation in operations(document):
        expected = [{"bearerAuth": []}] if (method, path) in PROTECTED else None
        assert operation.get("security") == expected, (method, path)


def test_the_document_has_a_title_version_and_description(document: dict[str, Any]) -> None:
    assert document["info"]["title"] and document["info"]["version"] and document["info"]["description"]


# --- inputs ---------------------------------------------------------------------------------


def body_examples(document: dict[str, Any], method: str, path: str) -> list[Any]:
    media = document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
    return [example["value"] for example in media["examples"].values()]


def test_every_request_body_is_documented_with_an_example(document: dict[str, Any]) -> None:
    with_body = {(m, p) for m, p, op in operations(document) if "requestBody" in op}
    assert with_body == {
        ("POST", "/api/orders/execute"),
        ("PUT", "/api/market/prices"),
        ("POST", "/api/market/launches"),
    }
    for method, path in with_body:
        assert body_examples(document, method, path), (method, path)


def test_order_body_examples_are_orders_the_api_accepts(document: dict[str, Any]) -> None:
    examples = body_examples(document, "POST", "/api/orders/execute")
    assert {e["orderType"] for e in examples} == {"market", "limit", "sniper"}
    for example in examples:
        parse_order_request(
            json.dumps(example).encode(),
            max_slippage=Decimal("0.5"),
            default_slippage=Decimal("0.01"),
            now=datetime.now(UTC),
        )


def test_market_body_examples_are_accepted(document: dict[str, Any]) -> None:
    for example in body_examples(document, "PUT", "/api/market/prices"):
        assert parse_market_prices(json.dumps(example).encode())
    for example in body_examples(document, "POST", "/api/market/launches"):
        assert parse_launch_request(json.dumps(example).encode()) == example["token"]


def test_the_order_body_schema_accepts_decimals_as_json_numbers_like_the_decoder(
    document: dict[str, Any],
) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")  # comes with schemathesis (dev extra)
    media = document["paths"]["/api/orders/execute"]["post"]["requestBody"]["content"]["application/json"]
    validator = jsonschema_rs.validator_for(media["schema"])
    order = {"userId": "u", "orderType": "market", "tokenIn": "SOL", "tokenOut": "USDC"}
    assert validator.is_valid({**order, "amount": 1.5})
    assert validator.is_valid({**order, "amount": "1.5"})
    assert not validator.is_valid({**order, "amount": "lots"})
    assert not validator.is_valid({**order, "amount": "1.5", "colour": "red"})


def test_list_query_parameters_are_documented_from_the_type_that_decodes_them(
    document: dict[str, Any],
) -> None:
    parameters = {p["name"]: p for p in document["paths"]["/api/orders"]["get"]["parameters"]}
    assert set(parameters) == set(OrderListQuery.__struct_fields__)
    assert set(parameters["status"]["schema"]["enum"]) == set(get_args(OrderStatus))
    assert (parameters["limit"]["schema"]["minimum"], parameters["limit"]["schema"]["maximum"]) == (1, 200)
    assert parse_list_query({"limit": "200", "status": "waiting"}).limit == 200


def test_listed_statuses_are_every_status_an_order_can_have() -> None:
    assert set(get_args(OrderStatus)) == set(TRANSITIONS) - {"new"}


def test_the_idempotency_key_header_and_path_parameters_are_documented(document: dict[str, Any]) -> None:
    execute = document["paths"]["/api/orders/execute"]["post"]
    header = next(p for p in execute["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key"
    assert (header["schema"]["minLength"], header["schema"]["maxLength"]) == (1, 128)
    order = document["paths"]["/api/orders/{order_id}"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["schema"]["format"]) for p in order] == [("order_id", "path", "uuid")]


# --- outputs --------------------------------------------------------------------------------


def response_examples(document: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            media = response["content"]["application/json"]
            for example in media.get("examples", {}).values():
                yield f"{method} {path} {status}", media["schema"].get("$ref", ""), example["value"]


def test_every_response_has_an_example(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            assert response["content"]["application/json"].get("examples"), (method, path, status)


def test_response_examples_decode_into_their_msgspec_types(document: dict[str, Any]) -> None:
    checked = 0
    for where, ref, value in response_examples(document):
        # Inline schemas are the market prices (a dict); the rest refer to a Struct of api/schemas.py.
        name = ref.rsplit("/", 1)[-1]
        wire_type = (
            (getattr(schemas, name, None) or getattr(dashboard_schemas, name))
            if ref
            else schemas.MarketPrices
        )
        decoded = msgspec.convert(value, wire_type)
        assert msgspec.to_builtins(decoded) == value, where  # nothing dropped or invented
        checked += 1
    assert checked >= len(STATUSES)


def test_each_success_response_documents_the_type_the_handler_returns(app: Litestar) -> None:
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/schema"):
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            returned = handler.parsed_fn_signature.return_type
            if (
                returned.inner_types
                and returned.origin is not None
                and returned.origin.__name__ == "Response"
            ):
                returned = returned.inner_types[0]
            assert handler.responses is not None, handler
            assert handler.responses[handler.status_code].data_container == returned.annotation, handler


def test_the_order_view_has_every_key_the_read_model_returns() -> None:
    assert set(schemas.OrderView.__struct_fields__) == set(_FIELDS.values())


def test_the_401_the_auth_middleware_sends_is_an_error_body() -> None:
    body = msgspec.json.decode(_UNAUTHORIZED, type=schemas.ErrorBody)
    assert body.error.code == "unauthorized" and body.error.field == "Authorization"


def test_an_error_without_field_or_status_leaves_them_out() -> None:
    assert msgspec.json.decode(msgspec.json.encode(schemas.error_body("not_found", "gone"))) == {
        "error": {"code": "not_found", "message": "gone"}
    }

"""The client docs cover the API the app really registers: the Postman collection (valid v2.1,
one request for every HTTP route, nothing stale) and docs/api.md (every HTTP and WebSocket
route). A route added without docs fails here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.enums import HttpMethod
from litestar.routes import HTTPRoute, WebSocketRoute

from adapters.settings import Settings
from api.app import create_app

DOCS = Path(__file__).resolve().parents[2] / "docs"
COLLECTION = DOCS / "postman_collection.json"
ENVIRONMENT = DOCS / "postman_environment.json"
API_MD = DOCS / "api.md"
SCHEMA_V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
IGNORED_METHODS = {"OPTIONS", "HEAD"}
PARAM = "{param}"

Route = tuple[str, str]  # (method, path with parameters as {param})


def normalise(path: str) -> str:
    """`/api/orders/{order_id:str}` and `/api/orders/{{orderId}}` both become `/api/orders/{param}`."""
    path = re.sub(r"\{\{[^}]+\}\}", PARAM, path)
    path = re.sub(r"\{[^}{]+\}", PARAM, path)
    return "/" + path.strip("/") if path.strip("/") else "/"


def is_schema_subpath(path: str) -> bool:
    """The OpenAPI viewers and documents under /schema/ are Litestar's; /schema itself is documented."""
    return path.startswith("/schema/")


@pytest.fixture(scope="module")
def app() -> Litestar:
    return create_app(Settings())  # builds routes only: nothing connects before the lifespan


@pytest.fixture(scope="module")
def http_routes(app: Litestar) -> set[Route]:
    routes: set[Route] = {
        (method.value if isinstance(method, HttpMethod) else method, normalise(route.path))
        for route in app.routes
        if isinstance(route, HTTPRoute) and not is_schema_subpath(route.path)
        for method in route.methods
        if method not in IGNORED_METHODS
    }
    assert routes, "the app registers no HTTP route"
    return routes


@pytest.fixture(scope="module")
def ws_routes(app: Litestar) -> set[str]:
    routes = {normalise(route.path) for route in app.routes if isinstance(route, WebSocketRoute)}
    assert routes, "the app registers no WebSocket route"
    return routes


@pytest.fixture(scope="module")
def collection() -> dict[str, Any]:
    data = json.loads(COLLECTION.read_text())
    assert isinstance(data, dict)
    return data


def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every request item, through folders of any depth."""
    for entry in items:
        if "item" in entry:
            assert isinstance(entry["item"], list), f"folder {entry.get('name')!r}: item must be a list"
            yield from walk(entry["item"])
        else:
            yield entry


def request_route(item: dict[str, Any]) -> Route:
    url = item["request"]["url"]
    raw = url["raw"] if isinstance(url, dict) else url
    assert raw.startswith("{{baseUrl}}/"), f"{item['name']!r}: the URL must start with {{{{baseUrl}}}}/"
    path = raw.removeprefix("{{baseUrl}}").split("?", 1)[0]
    return item["request"]["method"], normalise(path)


# -- the Postman collection -------------------------------------------------------------


def test_collection_is_postman_v21(collection: dict[str, Any]) -> None:
    info = collection["info"]
    assert info["schema"] == SCHEMA_V21
    assert info["name"] and info["_postman_id"]
    assert isinstance(collection["item"], list) and collection["item"]
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["baseUrl"] == "http://localhost:3000"
    assert "apiKey" in variables
    auth = collection["auth"]
    assert auth["type"] == "bearer"
    assert {"key": "token", "value": "{{apiKey}}", "type": "string"} in auth["bearer"]


def test_every_request_is_well_formed(collection: dict[str, Any]) -> None:
    names = set()
    for item in walk(collection["item"]):
        name = item["name"]
        assert name not in names, f"two requests named {name!r}"
        names.add(name)
        request = item["request"]
        assert request["method"] in {"GET", "POST", "PUT", "DELETE", "PATCH"}, name
        url = request["url"]
        assert url["host"] == ["{{baseUrl}}"], name
        path, _, query = url["raw"].removeprefix("{{baseUrl}}/").partition("?")
        assert url["path"] == path.split("/"), f"{name!r}: url.path must match url.raw"
        enabled = [f"{q['key']}={q['value']}" for q in url.get("query", []) if not q.get("disabled")]
        assert query == "&".join(enabled), f"{name!r}: url.query must match url.raw"
        if "body" in request:
            body = request["body"]
            assert body["mode"] == "raw" and body["options"]["raw"]["language"] == "json", name
            json.loads(re.sub(r'"\{\{\w+\}\}"', '"x"', body["raw"]))  # variables are whole strings
        for example in item.get("response", []):
            assert example["name"] and isinstance(example["code"], int), name
            assert {"method", "url"} <= set(example["originalRequest"]), name
            if example["_postman_previewlanguage"] == "json":
                body = json.loads(example["body"])
                if example["code"] >= 400 and request_route(item) != ("GET", "/readyz"):  # /readyz: its own
                    assert set(body) == {"error"}, f"{name!r} / {example['name']!r}: not the error shape"
                    assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "field", "status"}


def test_public_endpoints_send_no_key(collection: dict[str, Any]) -> None:
    public = {
        route: item for item in walk(collection["item"]) for route in [request_route(item)] if route[1] in
        {"/healthz", "/readyz", "/schema", "/schema/openapi.json"}
    }  # fmt: skip
    assert {path for _, path in public} >= {"/healthz", "/readyz", "/schema"}
    for item in public.values():
        assert item["request"].get("auth") == {"type": "noauth"}, item["name"]


def test_collection_covers_every_http_route(collection: dict[str, Any], http_routes: set[Route]) -> None:
    documented = {request_route(item) for item in walk(collection["item"])}
    missing = http_routes - documented
    assert not missing, f"HTTP routes with no request in docs/postman_collection.json: {sorted(missing)}"


def test_collection_has_no_stale_requests(collection: dict[str, Any], http_routes: set[Route]) -> None:
    documented = {request_route(item) for item in walk(collection["item"])}
    stale = {route for route in documented - http_routes if not is_schema_subpath(route[1])}
    assert not stale, f"requests in docs/postman_collection.json for routes the app lacks: {sorted(stale)}"


def test_collection_describes_every_websocket_route(collection: dict[str, Any], ws_routes: set[str]) -> None:
    folders = [f for f in collection["item"] if "WebSocket" in f["name"]]
    assert len(folders) == 1, "one folder describes the WebSocket streams"
    text = normalise_text(json.dumps(folders[0]))
    for path in ws_routes:
        assert ws_url(path).search(text), (
            f"WebSocket route {path} is not in the collection's WebSocket folder"
        )


def test_environment() -> None:
    environment = json.loads(ENVIRONMENT.read_text())
    values = {v["key"]: v for v in environment["values"]}
    assert values["baseUrl"]["value"] == "http://localhost:3000"
    assert values["apiKey"]["type"] == "secret"
    assert environment["_postman_variable_scope"] == "environment"


# -- docs/api.md ------------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Path parameters in prose (`{id}`, `$ORDER_ID`, `{{orderId}}`) read as {param}."""
    text = re.sub(r"\{\{\w+\}\}", PARAM, text)
    text = re.sub(r"\{\w+\}", PARAM, text)
    return re.sub(r"\$\{?[A-Z_]+\}?", PARAM, text)


def http_mention(method: str, path: str) -> re.Pattern[str]:
    return re.compile(rf"{method} {re.escape(path)}(?![\w/{{])")


def ws_url(path: str) -> re.Pattern[str]:
    """A usable WebSocket URL for the route: `ws://host:port<path>` then the end, `?`, a quote or space."""
    return re.compile(rf"ws://[^\s`\"']*?{re.escape(path)}(?=[?\s`\"']|$)", re.MULTILINE)


@pytest.fixture(scope="module")
def api_md() -> str:
    return normalise_text(API_MD.read_text())


def test_api_md_mentions_every_http_route(api_md: str, http_routes: set[Route]) -> None:
    missing = sorted(route for route in http_routes if not http_mention(*route).search(api_md))
    assert not missing, f"HTTP routes docs/api.md does not mention as `METHOD /path`: {missing}"


def test_api_md_shows_every_websocket_route(api_md: str, ws_routes: set[str]) -> None:
    missing = sorted(path for path in ws_routes if not ws_url(path).search(api_md))
    assert not missing, f"WebSocket routes docs/api.md gives no ws:// URL for: {missing}"


def test_api_md_documents_schema(api_md: str) -> None:
    assert http_mention("GET", "/schema").search(api_md)


def test_the_checks_catch_an_undocumented_route(api_md: str, collection: dict[str, Any]) -> None:
    """The matchers are not vacuous: a made-up route is reported missing by both."""
    documented = {request_route(item) for item in walk(collection["item"])}
    assert ("GET", "/api/orders/{param}/fills") not in documented
    assert not http_mention("GET", "/api/orders/{param}/fills").search(api_md)
    assert not http_mention("GET", "/api/order").search(api_md)  # a prefix of a real route is not a mention
    assert not ws_url("/ws/orders").search(api_md)


def test_operations_md_explains_every_audit_divergence_and_operator_command() -> None:
    from projections.audit import KINDS

    text = (DOCS / "operations.md").read_text()
    assert [k for k in KINDS if f"`{k}`" not in text] == []
    commands = ["replay", "audit", "projections status", "projections rebuild", "events tail"]
    assert [c for c in commands if f"orderengine {c}" not in text] == []

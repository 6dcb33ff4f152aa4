"""How the OpenAPI document at `/schema` describes each endpoint.

Inputs the handlers decode by hand (so that an error names the field: bodies, the
list query, the Idempotency-Key header) are documented from the same msgspec types
that decode them, through msgspec's own JSON Schema generator: `documented(...)`
adds them to the operation. The wire types and examples are in api/schemas.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, cast

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from msgspec import Meta

from api.order_request import LaunchRequest, OrderListQuery, OrderRequest, PriceUpdate
from api.schema_examples import (
    ERROR_EXAMPLES,
    LAUNCH_EXAMPLES,
    ORDER_EXAMPLES,
    PRICES_EXAMPLES,
    SUCCESS_EXAMPLES,
)
from api.schemas import ErrorBody, error_body

BEARER_AUTH = "bearerAuth"
# Everything but the probes and /schema needs a key when API_KEYS is set (api/auth.py).
BEARER: list[dict[str, list[str]]] = [{BEARER_AUTH: []}]
COMPONENTS = Components(
    security_schemes={
        BEARER_AUTH: SecurityScheme(
            type="http",
            scheme="bearer",
            description="`Authorization: Bearer <key>` with a key from API_KEYS; without API_KEYS, open",
        )
    }
)


def ok(data_container: Any, example: str, description: str = "Success") -> ResponseSpec:
    """The success response with its example (the type must be the handler's return type)."""
    return ResponseSpec(
        data_container=data_container,
        description=description,
        generate_examples=False,
        examples=[Example(summary=example, value=SUCCESS_EXAMPLES[example])],
    )


def errors(
    *statuses: int, examples: Mapping[int, tuple[str, ErrorBody]] | None = None
) -> dict[int, ResponseSpec]:
    """The error responses an operation can answer, each `ErrorBody` with its example
    (`examples` replaces the general one of a status where this operation says more)."""
    chosen = {**ERROR_EXAMPLES, **(examples or {})}
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=chosen[status][0],
            generate_examples=False,
            examples=[Example(summary=chosen[status][0], value=chosen[status][1])],
        )
        for status in statuses
    }


IDEMPOTENCY_CONFLICT = (
    "The idempotency key (or clientOrderId) already names a different order; `status` is that order's",
    error_body("conflict", "this idempotency key already names a different order", status="confirmed"),
)


def json_schema(type_: Any) -> dict[str, Any]:
    """msgspec's JSON Schema for `type_`, inline, with decimals as msgspec's decoder accepts them.

    msgspec decodes a Decimal from a JSON string or number but documents only the
    string; the schema must accept `"amount": 1.5` as the decoder does. A plain dict
    (typed as Litestar's `Schema` where one is expected): Litestar writes dicts into
    the document as they are.
    """
    (top,), components = msgspec.json.schema_components([type_], ref_template="#/components/schemas/{name}")
    schema = components.pop(top["$ref"].rsplit("/", 1)[1]) if "$ref" in top else top
    if components:  # inlining would leave dangling references
        raise TypeError(f"{type_!r} nests Structs: document it as a component instead")
    return cast(dict[str, Any], _decimals_as_decoded(schema))


_DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def _decimals_as_decoded(node: Any) -> Any:
    if isinstance(node, list):
        return [_decimals_as_decoded(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _decimals_as_decoded(value) for key, value in node.items()}
    if node.get("type") == "string" and node.get("format") == "decimal":
        notes = {key: node.pop(key) for key in ("title", "description", "examples") if key in node}
        return {"anyOf": [{**node, "pattern": _DECIMAL_PATTERN}, {"type": "number"}], **notes}
    return node


def query_parameters(query_type: type[msgspec.Struct]) -> list[Parameter]:
    """One query parameter per field of the Struct the handler decodes its query with."""
    schema = json_schema(query_type)
    required = set(schema.get("required", ()))
    return [
        Parameter(
            name=name,
            param_in="query",
            schema=cast(Schema, prop),
            description=prop.get("description"),
            required=name in required,
        )
        for name, prop in schema["properties"].items()
    ]


IdempotencyKey = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        description="Retries with the same key (per user) name the same order, stored once; "
        "the body's clientOrderId does the same",
    ),
]
# Read and checked by api/order_service.py `place_order`; documented from this type.
IDEMPOTENCY_KEY_HEADER = Parameter(
    name="Idempotency-Key",
    param_in="header",
    schema=cast(Schema, json_schema(IdempotencyKey)),
    description="Retries with the same key (per user) name the same order, stored once",
    required=False,
)


def request_body(type_: Any, examples: Mapping[str, Any], description: str) -> RequestBody:
    return RequestBody(
        required=True,
        description=description,
        content={
            "application/json": OpenAPIMediaType(
                schema=cast(Schema, json_schema(type_)),
                examples={name: Example(summary=name, value=value) for name, value in examples.items()},
            )
        },
    )


# Headers the middleware and the error handlers set on these statuses.
_ERROR_HEADERS = {
    "401": {
        "WWW-Authenticate": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING), description='Bearer realm="orderengine"'
        )
    },
    "429": {
        "Retry-After": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.INTEGER, minimum=1), description="Seconds to wait", required=True
        )
    },
}


def documented(*, body: RequestBody | None = None, parameters: Sequence[Parameter] = ()) -> type[Operation]:
    """An Operation class adding what Litestar cannot see in a handler that decodes by hand:
    the request body, extra parameters, and the headers of 401 and 429 answers."""

    @dataclass
    class DocumentedOperation(Operation):
        def __post_init__(self) -> None:
            if body is not None:
                self.request_body = body
            if parameters:
                self.parameters = [*(self.parameters or []), *parameters]
            responses = self.responses or {}
            if not _is_error_body(responses.get("400")):
                # Litestar adds its own 400 body for any handler with parameters; ours never
                # answers in that shape, and a handler that can answer 400 lists it in errors().
                responses.pop("400", None)
            for status, headers in _ERROR_HEADERS.items():
                response = responses.get(status)
                if isinstance(response, OpenAPIResponse):
                    response.headers = {**(response.headers or {}), **headers}

    return DocumentedOperation


def _is_error_body(response: object) -> bool:
    # Ours refer to the ErrorBody component; Litestar's own 400 body is an inline schema.
    # (References get their final path only once the document is complete.)
    if not isinstance(response, OpenAPIResponse) or not response.content:
        return False
    media = response.content.get("application/json")
    return isinstance(media, OpenAPIMediaType) and isinstance(media.schema, Reference)


ORDER_BODY = request_body(OrderRequest, ORDER_EXAMPLES, "The order to place")
PRICES_BODY = request_body(PriceUpdate, PRICES_EXAMPLES, "USD prices to set in the mock market")
LAUNCH_BODY = request_body(LaunchRequest, LAUNCH_EXAMPLES, "The token to launch in the mock market")
LIST_QUERY = query_parameters(OrderListQuery)

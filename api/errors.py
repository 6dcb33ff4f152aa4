"""Every error a client sees is JSON `{"error": {"code", "message", "field"?}}`.

Exception handlers map domain and input errors to their status (400 malformed
JSON, 422 a field that fails validation, 404, 409, 413, 429, 503) and never
leak a traceback.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import psycopg
import redis.exceptions
from litestar import Request, Response
from litestar.exceptions import HTTPException

from api.order_request import RequestError
from api.order_service import RateLimited
from domain.errors import DomainError, OrderNotFound

log = logging.getLogger("orderengine.api")


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return Response({"error": body}, status_code=status)


class Forbidden(Exception):
    """The caller may not ask this (e.g. another user's order list): 403."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _forbidden(_: Request[Any, Any, Any], exc: Forbidden) -> Response[Any]:
    return error_response(403, "forbidden", exc.message, exc.field)


def _rate_limited(_: Request[Any, Any, Any], exc: RateLimited) -> Response[Any]:
    response = error_response(429, "rate_limited", str(exc))
    response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return response


def _request_error(_: Request[Any, Any, Any], exc: RequestError) -> Response[Any]:
    # 400 when the body is not JSON at all; 422 when it is but a value fails validation.
    return error_response(400 if exc.code == "malformed_json" else 422, exc.code, exc.message, exc.field)


def _not_found(_: Request[Any, Any, Any], exc: OrderNotFound) -> Response[Any]:
    return error_response(404, "not_found", str(exc))


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    response = error_response(409, "conflict", str(exc))
    status = getattr(exc, "status", None)
    if status is not None:  # where the order stands, so the client need not ask again
        response.content["error"]["status"] = status
    return response


def _unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("dependency unavailable: %s", exc)
    return error_response(
        503, "unavailable", "a backing service (Postgres or Redis) is unavailable; retry shortly"
    )


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return error_response(exc.status_code, "http_error", exc.detail)


def _internal(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error")
    return error_response(500, "internal", "internal error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    RequestError: _request_error,
    Forbidden: _forbidden,
    RateLimited: _rate_limited,
    OrderNotFound: _not_found,
    DomainError: _domain_error,
    psycopg.OperationalError: _unavailable,
    redis.exceptions.ConnectionError: _unavailable,
    HTTPException: _http_error,
    Exception: _internal,
}

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

from api.request_error import RequestError
from api.schemas import ErrorBody, error_body
from domain.errors import DomainError, OrderNotFound, RateLimited

log = logging.getLogger("orderengine.api")


def error_response(
    status: int, code: str, message: str, field: str | None = None, order_status: str | None = None
) -> Response[ErrorBody]:
    return Response(error_body(code, message, field, order_status), status_code=status)


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


# 400 when the body is not JSON at all; 404 when a path parameter fails its rule (so the
# path names nothing); 422 when a value fails validation.
_REQUEST_ERROR_STATUS = {"malformed_json": 400, "not_found": 404}


def _request_error(_: Request[Any, Any, Any], exc: RequestError) -> Response[Any]:
    return error_response(_REQUEST_ERROR_STATUS.get(exc.code, 422), exc.code, exc.message, exc.field)


def _not_found(_: Request[Any, Any, Any], exc: OrderNotFound) -> Response[Any]:
    return error_response(404, "not_found", str(exc))


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    # With the order's status, where the error knows it, so the client need not ask again.
    return error_response(409, "conflict", str(exc), order_status=getattr(exc, "status", None))


def _unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("dependency unavailable: %s", exc)
    response = error_response(
        503, "unavailable", "a backing service (Postgres or Redis) is unavailable; retry shortly"
    )
    response.headers["Retry-After"] = "1"  # a restart or a lost connection lasts seconds
    return response


# Errors Litestar raises itself (routing, body size), named like ours rather than all "http_error".
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), exc.detail)


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

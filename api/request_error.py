"""The one error type for bad client input (api/input_rules.py, api/order_request.py)."""

from __future__ import annotations


class RequestError(Exception):
    """Bad input, with the field (if one is to blame) and the reason: HTTP 400 for a body
    that is not JSON (`malformed_json`), 422 for one whose values fail validation, 404
    (`not_found`) for a path parameter that therefore names nothing; a WebSocket closes
    1008 with the message as its reason."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

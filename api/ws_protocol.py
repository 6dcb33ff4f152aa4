"""uvicorn's `websockets-sansio` WebSocket protocol, made to answer the handshakes it refuses.

uvicorn (0.54) hands the upgrade request to websockets' `ServerProtocol`. For a request
line over websockets' limit (8 KiB, `WEBSOCKETS_MAX_LINE_LENGTH`: a `/ws?userId=` of
10,000 characters), headers too large, or a request it cannot parse, that protocol
queues its refusal (414, 431) and an end of stream, but uvicorn writes out the queued
bytes only after a request it could parse: the client waited for an answer that sat in a
buffer, the connection stayed open until the client gave up, and only websockets' own
INFO line "HTTP response sent (414 …)" said otherwise.

`WebSocketsProtocol` writes the refusal out (a 400 when websockets queued none), closes
the connection, and logs a warning naming the client, the status and the reason. Run
uvicorn with `ws="api.ws_protocol:WebSocketsProtocol"` in place of `"websockets-sansio"`.
"""

from __future__ import annotations

import logging

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger("orderengine.ws")

_BAD_REQUEST_BODY = b"Failed to open a WebSocket connection: invalid HTTP request.\n"
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BAD_REQUEST_BODY), _BAD_REQUEST_BODY)
)


class WebSocketsProtocol(WebSocketsSansIOProtocol):
    """The sansio protocol, plus an answer (and a log line) for a refused handshake."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and not self.close_sent and self.conn.handshake_exc is not None:
            self._answer_refused_handshake(data)

    def _answer_refused_handshake(self, data: bytes) -> None:
        queued = b"".join(self.conn.data_to_send())
        answer = queued or _BAD_REQUEST
        status = answer.split(b"\r\n", 1)[0].decode("latin-1").removeprefix("HTTP/1.1 ")
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        request_line = data.split(b"\r\n", 1)[0]
        log.warning(
            "websocket handshake refused",
            extra={
                "client": client,
                "status": status,
                "reason": str(self.conn.handshake_exc),
                "request": request_line[:100].decode("latin-1")
                + (f"… ({len(request_line)} bytes)" if len(request_line) > 100 else ""),
            },
        )
        self.handshake_complete = True  # no ASGI task was started, and none will be
        self.close_sent = True
        self.transport.write(answer)
        self.transport.close()

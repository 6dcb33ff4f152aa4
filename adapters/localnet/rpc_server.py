"""The local chain's JSON-RPC 2.0 server (single and batch requests, POST `/`).

A Litestar app under uvicorn on 127.0.0.1. Everything that touches the chain (requests
and the slot ticker) runs on the server's one event loop, because LiteSVM is not
thread-safe; a request is answered synchronously (a transaction takes milliseconds).
Every answer is HTTP 200 with a well-formed JSON-RPC body, except during an injected
outage (HTTP 503, which solana-py raises as SolanaRpcException) — admin `localnet_*`
requests pass the outage so a test can end it.

`serve()` runs the server in the current event loop; `LocalnetServer` runs it in a
background thread for tests (`with LocalnetServer() as server: AsyncClient(server.url)`)
and `server.call(fn)` runs `fn(chain)` on the server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get, post

from adapters.localnet.chain import LocalChain
from adapters.localnet.rpc_methods import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, RpcError, RpcMethods

logger = logging.getLogger(__name__)

T = TypeVar("T")
_JSON = "application/json"
_OUTAGE_BODY = b"Service Unavailable (localnet outage)"


def handle_body(methods: RpcMethods, body: bytes) -> bytes:
    """The JSON-RPC response body for a request body (single or batch)."""
    try:
        request = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return _encode(_error(None, RpcError(PARSE_ERROR, "Parse error")))
    if isinstance(request, list):
        if not request:
            return _encode(_error(None, RpcError(INVALID_REQUEST, "Invalid request")))
        return _encode([_handle_one(methods, item) for item in request])
    return _encode(_handle_one(methods, request))


def _handle_one(methods: RpcMethods, request: Any) -> dict[str, Any]:
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return _error(None, RpcError(INVALID_REQUEST, "Invalid request"))
    request_id = request.get("id")
    try:
        result = methods.call(request["method"], request.get("params"))
    except RpcError as error:
        return _error(request_id, error)
    except Exception:
        logger.exception("localnet RPC %s crashed", request["method"])
        return _error(request_id, RpcError(INTERNAL_ERROR, "Internal error"))
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def _error(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _encode(payload: Any) -> bytes:
    return msgspec.json.encode(payload)


def _admin_only(body: bytes) -> bool:
    """Whether every request in the body is a `localnet_*` admin method."""
    try:
        request = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return False
    requests = request if isinstance(request, list) else [request]
    return bool(requests) and all(
        isinstance(r, dict) and str(r.get("method", "")).startswith("localnet_") for r in requests
    )


def create_app(chain: LocalChain, *, slot_ms: int = 400) -> Litestar:
    """The RPC app; its lifespan ticks the chain one slot every `slot_ms` (0: never)."""
    methods = RpcMethods(chain)

    @post("/", status_code=200)
    async def rpc(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        if chain.in_outage() and not _admin_only(body):
            return Response(_OUTAGE_BODY, status_code=503, media_type="text/plain")
        return Response(handle_body(methods, body), media_type=_JSON)

    @get("/health", sync_to_thread=False)
    def health() -> str:
        return "ok"

    @contextlib.asynccontextmanager
    async def ticking(_: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(_tick_forever(chain, slot_ms)) if slot_ms > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Litestar([rpc, health], lifespan=[ticking], debug=False)


async def _tick_forever(chain: LocalChain, slot_ms: int) -> None:
    """One tick every `slot_ms`, on a schedule that does not drift with the work."""
    period = slot_ms / 1000
    next_tick = time.monotonic() + period
    while True:
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick += period
        try:
            chain.tick()
        except Exception:
            logger.exception("localnet tick failed")


def _server(chain: LocalChain, host: str, port: int, slot_ms: int) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(chain, slot_ms=slot_ms),
        host=host,
        port=port,
        lifespan="on",
        ws="none",
        log_level="warning",
        access_log=False,
        log_config=None,
        # Past uvicorn's 5 s default a client reusing a connection raced its close.
        timeout_keep_alive=65,
    )
    return uvicorn.Server(config)


async def serve(chain: LocalChain, host: str = "127.0.0.1", port: int = 8899, slot_ms: int = 400) -> None:
    """Serve `chain` over JSON-RPC on host:port until cancelled (or SIGINT/SIGTERM in the main thread)."""
    await _server(chain, host, port, slot_ms).serve()


class LocalnetServer:
    """The RPC server in a background thread, for tests: a context manager.

    `port=0` binds a free port (the socket is bound before the server starts, so there
    is no race); `.url` is the endpoint for `AsyncClient`. Do not touch `.chain` from
    another thread while the server runs: use `.call(fn)`, which runs `fn(chain)` on the
    server's loop and returns its result.
    """

    def __init__(
        self,
        chain: LocalChain | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        slot_ms: int = 400,
    ) -> None:
        self.chain = chain if chain is not None else LocalChain()
        self._host, self._port, self._slot_ms = host, port, slot_ms
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def __enter__(self) -> LocalnetServer:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
        # TCP, and without it every keep-alive request waited ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._server = _server(self.chain, self._host, self._port, self._slot_ms)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="localnet-rpc", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the localnet RPC server did not start: {self._error!r}")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def call(self, fn: Callable[[LocalChain], T]) -> T:
        """`fn(chain)` run on the server's event loop (the chain's one thread)."""
        if self._loop is None:
            raise RuntimeError("the localnet RPC server is not running")

        async def run() -> T:
            return fn(self.chain)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def _run(self, sock: socket.socket) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by __enter__ if it happens at start-up
            self._error = error
        finally:
            sock.close()

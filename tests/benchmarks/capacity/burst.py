"""The clients: N concurrent tasks sharing one iterator of market orders. Without a
subscriber a task POSTs back to back; with one, it POSTs, opens
`/ws?orderId=<id>`, reads until the order's terminal message, closes, and only then
takes the next order (so at most N orders are in flight). Every call is bounded:
POSTs by POST_TIMEOUT_S, each socket by SOCKET_TIMEOUT_S, the whole burst by a deadline.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from domain.order import TERMINAL as TERMINAL_STATUSES
from tests.benchmarks.flood import Posted
from tests.benchmarks.post_latency import order_body

USERS = 7
POST_TIMEOUT_S = 30.0
SOCKET_TIMEOUT_S = 120.0
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
EXECUTE = "/api/orders/execute"


def order_bodies(count: int, seed: int, user_prefix: str = "cap") -> list[dict[str, Any]]:
    """`count` SOL→USDC market orders, varied small amounts, spread over USERS userIds."""
    rng = random.Random(seed)
    return [order_body(f"{user_prefix}-{i % USERS}", rng) for i in range(count)]


@dataclass
class Received:
    version: int
    type: str
    status: str
    at: float  # wall clock (time.time()) when the client read it


@dataclass
class SocketLog:
    """What one order's socket received, and why it ended if not on the terminal message."""

    messages: list[Received] = field(default_factory=list)
    error: str | None = None
    close_code: int | None = None

    def confirmed_at(self) -> float | None:
        return next((m.at for m in self.messages if m.status == "confirmed"), None)


@dataclass
class Burst:
    posted: list[Posted] = field(default_factory=list)
    sockets: dict[str, SocketLog] = field(default_factory=dict)
    timed_out: bool = False

    def accepted(self) -> list[Posted]:
        return [p for p in self.posted if p.order_id is not None]

    def non_200(self) -> Counter[str]:
        """Every failed POST, by status and body (or transport error)."""
        return Counter(p.error for p in self.posted if p.error is not None)

    def first_sent(self) -> float:
        return min((p.sent_at for p in self.posted), default=float("nan"))


def local_client(base_url: str, connections: int) -> httpx.AsyncClient:
    if not base_url.startswith("http://127.0.0.1:"):
        raise ValueError(f"benchmark clients only talk to 127.0.0.1, not {base_url}")
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, timeout=POST_TIMEOUT_S, limits=limits, trust_env=False)


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> Posted:
    sent, start = time.time(), time.perf_counter()
    try:
        response = await client.post(EXECUTE, json=body)
    except httpx.HTTPError as exc:
        return Posted(None, sent, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"[:200])
    latency = time.perf_counter() - start
    if response.status_code == 200:
        return Posted(str(response.json()["orderId"]), sent, latency)
    return Posted(None, sent, latency, f"HTTP {response.status_code}: {response.text[:200]}")


async def follow(ws_base: str, order_id: str) -> SocketLog:
    """Read the order's stream until its terminal message (or a failure, or the timeout)."""
    log = SocketLog()
    try:
        async with asyncio.timeout(SOCKET_TIMEOUT_S):
            async with connect(
                f"{ws_base}/ws?orderId={order_id}",
                open_timeout=OPEN_TIMEOUT_S,
                close_timeout=CLOSE_TIMEOUT_S,
                compression=None,
                proxy=None,
            ) as ws:
                async for raw in ws:
                    message = json.loads(raw)
                    log.messages.append(
                        Received(
                            int(message["version"]), str(message["type"]), str(message["status"]), time.time()
                        )
                    )
                    if message["status"] in TERMINAL_STATUSES:
                        break
                else:
                    log.error = f"closed before the terminal message (code {ws.close_code})"
                log.close_code = ws.close_code
    except TimeoutError:
        log.error = f"no terminal message within {SOCKET_TIMEOUT_S:.0f} s"
    except (OSError, WebSocketException, ValueError, KeyError) as exc:
        log.error = f"{type(exc).__name__}: {exc}"[:200]
    return log


async def run_burst(
    base_url: str, bodies: list[dict[str, Any]], in_flight: int, subscribe: bool, deadline_s: float
) -> Burst:
    """`in_flight` tasks share the orders; the burst stops at `deadline_s` whatever is left."""
    burst = Burst()
    orders: Iterator[dict[str, Any]] = iter(bodies)
    ws_base = base_url.replace("http://", "ws://")
    async with local_client(base_url, in_flight) as client:

        async def one_task() -> None:
            for body in orders:  # shared iterator: each order is taken once
                posted = await post(client, body)
                burst.posted.append(posted)
                if subscribe and posted.order_id is not None:
                    burst.sockets[posted.order_id] = await follow(ws_base, posted.order_id)

        try:
            async with asyncio.timeout(deadline_s):
                await asyncio.gather(*(one_task() for _ in range(in_flight)))
        except TimeoutError:
            burst.timed_out = True
    return burst

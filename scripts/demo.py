"""The brief's demo against a running engine: several WebSocket clients at once, limit orders
that execute at once and ones that wait (then fill after a price move, are cancelled, or
expire), a sniper order and a token launch.

    .venv/bin/python scripts/demo.py                      # engine at http://127.0.0.1:3000
    .venv/bin/python scripts/demo.py --url http://127.0.0.1:3123
    .venv/bin/python scripts/demo.py --api-key KEY --user alice   # engine run with API_KEYS

It talks only to the engine at --url (HTTP and WebSocket) and every wait is bounded. It
prints what each WebSocket client receives and exits 0 when every order ended as planned.
See docs/demo-instructions.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TERMINAL = frozenset({"confirmed", "failed", "cancelled", "expired"})


@dataclass
class Followed:
    """One order and what its own WebSocket client has seen."""

    label: str
    plan: str
    expect: str
    order_id: str = ""
    status: str = "new"
    versions: list[int] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    kept_open: bool = False  # the server left the stream open after the end (WS_CLOSE_ON_TERMINAL=false)
    socket: ClientConnection | None = None


def significant(value: Decimal, digits: int = 6) -> str:
    """A price rounded to `digits` significant digits, in plain notation (the API takes decimal strings)."""
    return format(value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1)), "f")


def market(token_in: str, token_out: str, amount: str) -> dict[str, Any]:
    return {"orderType": "market", "tokenIn": token_in, "tokenOut": token_out, "amount": amount}


def limit(token_in: str, token_out: str, amount: str, price: str, **extra: str) -> dict[str, Any]:
    return {**market(token_in, token_out, amount), "orderType": "limit", "limitPrice": price, **extra}


def clock() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


def say(text: str) -> None:
    print(f"{clock()}  {text}", flush=True)


def step(text: str) -> None:
    print(f"\n{clock()}  === {text}", flush=True)


def summary(message: dict[str, Any]) -> str:
    """What a viewer reads in one event message."""
    d = message.get("details") or {}
    status = message["status"]
    if status == "pending":
        limit = f" at limit {d['limitPrice']}" if d.get("limitPrice") else ""
        expiry = f", expires {d['expiresAt']}" if d.get("expiresAt") else ""
        return f"accepted {d['orderType']} {d['amount']} {d['tokenIn']}->{d['tokenOut']}{limit}{expiry}"
    if status == "waiting":
        if "token" in d:
            return f"waiting for {d['token']} to launch"
        return f"best net price {d['bestPrice']} on {d['bestDex']}, below the limit {d['limitPrice']}"
    if status == "routing":
        quotes = ", ".join(f"{q['dex']} {q['expectedOut']}" for q in d.get("quotes", []))
        return f"quotes (expected out) {quotes} -> {d['chosenDex']}"
    if status == "building":
        fresh = " (re-quoted: limit still met)" if d.get("quote") else ""
        return f"minOut {d['minOut']}, actions {', '.join(d['actions'])}{fresh}"
    if status == "submitted":
        return f"sent on {d['dex']}, tx {d['txHash'][:16]}..."
    if status == "confirmed":
        return f"executed at {d['executedPrice']}, received {d['amountOut']}"
    if status == "retrying":
        return f"{d['step']} attempt {d['attempt']} failed ({d['error']}); retry in {d['retryInMs']} ms"
    if status == "failed":
        return f"{d['step']}: {d['error']}"
    if status == "cancelled":
        return f"{d['reason']}"
    if status == "expired":
        return f"expired at {d['expiresAt']}"
    return json.dumps(d)


class Demo:
    def __init__(self, url: str, api_key: str | None, user: str, deadline: float) -> None:
        self.url = url.rstrip("/")
        self.ws_url = "ws" + self.url.removeprefix("http")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.user = user
        self.deadline = deadline
        self.http = httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=10, trust_env=False)
        self.orders: dict[str, Followed] = {}  # by order id
        self.dashboard_seen: set[tuple[str, int]] = set()
        self.dashboard_error: str | None = None
        self.submitting = False
        self.tasks: list[asyncio.Task[None]] = []

    # -- HTTP ---------------------------------------------------------------------------

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        for _ in range(10):
            response = await self.http.request(method, path, json=body)
            retry_after = float(response.headers.get("retry-after", "0"))
            if response.status_code == 429 and time.monotonic() + retry_after < self.deadline:
                say(f"429 from {method} {path} (the per-user order rate): retrying in {retry_after:.0f} s")
                await asyncio.sleep(retry_after)
                continue
            break
        if response.status_code != 200:
            raise SystemExit(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    async def wait_ready(self) -> None:
        while True:
            try:
                response = await self.http.get("/readyz")
                if response.status_code == 200:
                    return
                detail = response.text
            except httpx.HTTPError as exc:
                detail = str(exc)
            if time.monotonic() > self.deadline:
                raise SystemExit(f"the engine at {self.url} is not ready: {detail}")
            await asyncio.sleep(1)

    # -- WebSocket clients -----------------------------------------------------------------

    async def dashboard(self, ready: asyncio.Event) -> None:
        """A trader's dashboard: every event of every order of the user, resumable by position."""
        url = f"{self.ws_url}/ws?userId={quote(self.user)}"
        try:
            async with connect(url, additional_headers=self.headers) as ws:
                say(f"[dashboard] connected to {url}")
                ready.set()
                async for raw in ws:
                    message = json.loads(raw)
                    self.dashboard_seen.add((message["orderId"], message["version"]))
                    if not self.submitting:
                        continue  # the user's history from before the demo
                    followed = self.orders.get(message["orderId"])
                    # An event may arrive here before its POST has answered: then it has no label yet.
                    name = followed.label if followed else message["orderId"][:8]
                    say(
                        f"[dashboard] position {message['position']}: order {name} "
                        f"v{message['version']} {message['status']}"
                    )
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
            self.dashboard_error = f"closed {code}: {reason}"
            say(f"[dashboard] {self.dashboard_error}")
            ready.set()
        except OSError as exc:  # no engine there, or the handshake failed
            self.dashboard_error = f"not opened: {exc}"
            ready.set()

    async def follow(self, followed: Followed, ws: ClientConnection) -> None:
        """One order's own stream: history, then live, then the server closes with 1000."""
        try:
            async for raw in ws:
                message = json.loads(raw)
                followed.versions.append(message["version"])
                followed.status = message["status"]
                version, status = message["version"], message["status"]
                say(f"[order {followed.label}] v{version} {status:<9} {summary(message)}")
        except ConnectionClosed:
            pass
        followed.close_code = ws.close_code
        followed.close_reason = ws.close_reason or ""
        say(f"[order {followed.label}] stream closed: {followed.close_code} {followed.close_reason}")

    async def submit(self, label: str, plan: str, expect: str, body: dict[str, Any]) -> Followed:
        followed = Followed(label, plan, expect)
        accepted = await self.call("POST", "/api/orders/execute", {"userId": self.user, **body})
        followed.order_id = accepted["orderId"]
        self.orders[followed.order_id] = followed
        say(f"POST /api/orders/execute -> order {label} {accepted['orderId']} ({plan})")
        ws = await connect(f"{self.ws_url}{accepted['streamUrl']}", additional_headers=self.headers)
        followed.socket = ws
        self.tasks.append(asyncio.create_task(self.follow(followed, ws)))
        return followed

    def check_streams(self) -> None:
        """Stop at once when the server refused a stream (1008 with its reason)."""
        if self.dashboard_error:
            raise SystemExit(f"the dashboard stream was {self.dashboard_error}")
        for o in self.orders.values():
            if o.close_code not in (None, 1000) and not o.kept_open:
                hint = (
                    " (the demo holds 8 WebSockets per user at once: raise WS_MAX_CONNECTIONS_PER_USER)"
                    if "too many" in o.close_reason
                    else ""
                )
                raise SystemExit(f"order {o.label}'s stream closed {o.close_code}: {o.close_reason}{hint}")

    async def until(self, what: str, check: Any, limit_s: float) -> None:
        stop = min(self.deadline, time.monotonic() + limit_s)
        while not check():
            self.check_streams()
            if time.monotonic() > stop:
                states = ", ".join(f"{o.label}={o.status}" for o in self.orders.values())
                raise SystemExit(f"gave up waiting for {what} ({states})")
            await asyncio.sleep(0.2)

    # -- the demo -------------------------------------------------------------------------------

    async def run(self) -> int:
        step(f"engine {self.url}: waiting for /readyz")
        await self.wait_ready()
        prices = await self.call("GET", "/api/market/prices")
        sol, jup, bonk = (Decimal(prices[t]) for t in ("SOL", "JUP", "BONK"))
        say(f"mock market (USD): SOL {prices['SOL']}, JUP {prices['JUP']}, BONK {prices['BONK']}")

        step(f"open the dashboard stream for user {self.user!r}")
        ready = asyncio.Event()
        self.tasks.append(asyncio.create_task(self.dashboard(ready)))
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.sleep(0.5)  # a refused stream is accepted, then closed with 1008 and the reason
        self.check_streams()

        step("submit six orders, each followed by its own WebSocket client")
        self.submitting = True
        b_limit, c_limit = significant(sol * Decimal("0.9")), significant(sol * Decimal("1.08"))
        d_limit, e_limit = significant(jup * Decimal("1.5")), significant(bonk * Decimal("1.5"))
        a = await self.submit(
            "A", "market SOL->USDC: executes at once", "confirmed", market("SOL", "USDC", "0.5")
        )
        b = await self.submit(
            "B",
            f"limit SOL->USDC at {b_limit}: marketable, executes at once",
            "confirmed",
            limit("SOL", "USDC", "1", b_limit),
        )
        c = await self.submit(
            "C",
            f"limit SOL->USDC at {c_limit}: waits until SOL rises",
            "confirmed",
            limit("SOL", "USDC", "1", c_limit),
        )
        d = await self.submit(
            "D",
            f"limit JUP->USDC at {d_limit}: waits, then is cancelled",
            "cancelled",
            limit("JUP", "USDC", "200", d_limit),
        )
        expires = (datetime.now(UTC) + timedelta(seconds=15)).isoformat(timespec="seconds")
        e = await self.submit(
            "E",
            f"limit BONK->USDC at {e_limit}, expires {expires}: expires",
            "expired",
            limit("BONK", "USDC", "5000000", e_limit, expiresAt=expires),
        )
        f = await self.submit(
            "F",
            "sniper USDC->LAUNCH: waits for LAUNCH's pools",
            "confirmed",
            {"orderType": "sniper", "tokenIn": "USDC", "tokenOut": "LAUNCH", "amount": "25"},
        )

        step("A and B execute at once; C, D and E wait for their price; F waits for the launch")
        await self.until(
            "A and B to confirm and C, D, E, F to wait",
            lambda: (
                a.status in TERMINAL
                and b.status in TERMINAL
                and all(o.status == "waiting" for o in (c, d, e))
                and f.status != "pending"
            ),
            30,
        )
        if f.status != "waiting":
            say("(LAUNCH was launched earlier in this engine's Redis, so F did not wait)")

        step(f"move the market: PUT /api/market/prices SOL {significant(sol * Decimal('1.2'))} (+20%)")
        await self.call("PUT", "/api/market/prices", {"SOL": significant(sol * Decimal("1.2"))})
        say("C is re-quoted at its next check (LIMIT_RECHECK_INTERVAL_MS) and executes")
        await self.until("C to execute", lambda: c.status in TERMINAL, 30)

        step(f"cancel D: DELETE /api/orders/{d.order_id}")
        cancelled = await self.call("DELETE", f"/api/orders/{d.order_id}")
        say(f"-> {cancelled}")
        await self.until("D to be cancelled", lambda: d.status in TERMINAL, 10)

        step('launch the token: POST /api/market/launches {"token": "LAUNCH"}')
        launched = await self.call("POST", "/api/market/launches", {"token": "LAUNCH"})
        say(f"-> {launched}")
        await self.until("F to execute", lambda: f.status in TERMINAL, 30)

        step(f"E expires at {expires} (checked every LIMIT_RECHECK_INTERVAL_MS)")
        await self.until("E to expire", lambda: e.status in TERMINAL, 40)
        await self.close_finished_streams()

        step(f"a late client resumes order C after version {c.versions[1]} (fromVersion)")
        resume = f"{self.ws_url}/api/orders/{c.order_id}/stream?fromVersion={c.versions[1]}"
        async with connect(resume, additional_headers=self.headers) as ws:
            try:
                async with asyncio.timeout(5):
                    async for raw in ws:
                        message = json.loads(raw)
                        say(f"[late client C] v{message['version']} {message['status']}")
                say(f"[late client C] closed {ws.close_code} {ws.close_reason}")
            except TimeoutError:
                say("[late client C] still open 5 s after the final event (WS_CLOSE_ON_TERMINAL=false?)")

        say(f"put SOL back to {prices['SOL']}")
        await self.call("PUT", "/api/market/prices", {"SOL": prices["SOL"]})
        await asyncio.sleep(0.5)  # the dashboard's last messages
        return self.report()

    async def close_finished_streams(self) -> None:
        """The server closes each order's stream with 1000 after its final event; with
        WS_CLOSE_ON_TERMINAL=false it keeps them open, and the demo closes them itself."""
        orders = list(self.orders.values())
        with contextlib.suppress(SystemExit):
            await self.until("the streams to close", lambda: all(o.close_code is not None for o in orders), 5)
        for o in orders:
            if o.close_code is None and o.socket is not None:
                say(f"[order {o.label}] still open after its final event: closing it from this side")
                o.kept_open = True
                await o.socket.close()

    def report(self) -> int:
        step("result")
        ok = True
        for o in self.orders.values():
            order = o.status == o.expect and (o.close_code == 1000 or o.kept_open)
            ok &= order
            print(
                f"  {o.label}  {o.status:<9} (expected {o.expect:<9}) versions {o.versions}  "
                f"close {o.close_code}  {'ok' if order else 'UNEXPECTED'}  {o.plan}"
            )
        streamed = {(o.order_id, v) for o in self.orders.values() for v in o.versions}
        missing = streamed - self.dashboard_seen
        print(f"  dashboard: {len(self.dashboard_seen)} events; missing from it: {len(missing)}")
        ok &= not missing and self.dashboard_error is None
        print("demo ok" if ok else "demo: something did not go as planned")
        return 0 if ok else 1

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.http.aclose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the engine's HTTP address")
    parser.add_argument("--api-key", help="an API key, when the engine runs with API_KEYS")
    parser.add_argument("--user", help="the userId (with --api-key: the key's user); default demo-<random>")
    parser.add_argument("--timeout", type=float, default=180, help="give up after this many seconds")
    args = parser.parse_args()
    if args.api_key and not args.user:
        parser.error("--api-key needs --user: the key's user (the dashboard streams only its own orders)")
    demo = Demo(
        args.url, args.api_key, args.user or f"demo-{secrets.token_hex(3)}", time.monotonic() + args.timeout
    )
    try:
        return await demo.run()
    finally:
        await demo.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

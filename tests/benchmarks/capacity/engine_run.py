"""One run's engine: a fresh database and Redis prefix, `orderengine run` on its own
defaults (flood.py's `make_engine` puts the harness's FAST overrides back) plus the
scenario's settings, ready before it is measured; afterwards stopped, its log
summarised, its Redis keys deleted and `orderengine audit --json` run against its
database before the database is dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.benchmarks.bench_env import delete_prefix, scratch_servers
from tests.benchmarks.flood import Options as FloodOptions
from tests.benchmarks.flood import make_engine, summarise_engine_log
from tests.e2e.engine import REPO, Engine
from tests.waiting import wait_until

READY_TIMEOUT_S = 60.0
START_TIMEOUT_S = 60.0
AUDIT_TIMEOUT_S = 600.0

# The capacity scenario's settings: no DEX latency and every limit lifted.
LIFTED = {
    "ORDER_RATE_PER_MIN": "60000",
    "ORDER_RATE_BURST": "100000",
    "WS_MAX_CONNECTIONS_PER_USER": "100000",
}
LIFTED_SCALE, LIFTED_CONCURRENCY, LIFTED_RATE = "0", 100_000, 1_000_000


def lifted_options(orders: int, clients: int, idle_ms: int) -> FloodOptions:
    """flood.py's options for MOCK_LATENCY_SCALE=0, QUEUE_MAX_CONCURRENT=100000,
    ORDER_PROCESSOR_RATE=1000000 (add LIFTED to the environment for the rest)."""
    return FloodOptions(
        orders=orders,
        scale=LIFTED_SCALE,
        rate=LIFTED_RATE,
        concurrency=LIFTED_CONCURRENCY,
        idle_ms=idle_ms,
        clients=clients,
    )


@dataclass
class Audit:
    """`orderengine audit --json` on a run's database: exit 0 = clean."""

    exit_code: int
    events: int = 0
    streams: int = 0
    divergences: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    error: str | None = None  # the command could not be run or its output not read

    @property
    def clean(self) -> bool:
        return self.exit_code == 0 and self.error is None

    def text(self) -> str:
        if self.error:
            return f"audit FAILED TO RUN ({self.error})"
        if self.clean:
            return f"audit clean ({self.events} events, {self.streams} streams)"
        kinds = ", ".join(f"{n}× {k}" for k, n in self.kinds.items())
        return f"audit exit {self.exit_code}: {self.divergences} divergences ({kinds})"


def run_audit(database_url: str, redis_url: str) -> Audit:
    """`python -m api.cli audit --json` with the run's DATABASE_URL, bounded by AUDIT_TIMEOUT_S."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", "audit", "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=AUDIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Audit(exit_code=-1, error=f"no answer within {AUDIT_TIMEOUT_S:.0f} s")
    try:
        body: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (done.stderr or done.stdout).strip()[-300:]
        return Audit(exit_code=done.returncode, error=f"exit {done.returncode}, no JSON: {tail}")
    divergences = body.get("divergences", [])
    return Audit(
        exit_code=done.returncode,
        events=int(body.get("events", 0)),
        streams=int(body.get("streams", 0)),
        divergences=len(divergences),
        kinds=dict(Counter(str(d.get("kind")) for d in divergences)),
        examples=[f"{d.get('kind')} {d.get('orderId')}: {d.get('detail')}"[:200] for d in divergences[:3]],
    )


def wait_ready(engine: Engine, timeout: float = READY_TIMEOUT_S) -> None:
    """Until /readyz answers 200: Postgres, Redis, a worker and the scheduler all up."""

    def ready() -> bool:
        if engine.proc is not None and engine.proc.poll() is not None:
            raise RuntimeError(f"engine exited with {engine.proc.returncode}:\n{engine.log()}")
        try:
            return httpx.get(f"{engine.base_url}/readyz", timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout, interval=0.1, what="the engine's /readyz")


@dataclass
class EngineLogSummary:
    errors: int
    warnings: int
    text: str
    kept_at: str | None  # the engine log is kept when it has errors
    messages: dict[str, int] = field(default_factory=dict)  # the most frequent warnings and errors


def _messages(text: str) -> dict[str, int]:
    """flood.py's summary lists its most frequent messages as `    N× level logger: msg` lines."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        count, sep, message = line.strip().partition("× ")
        if line.startswith("    ") and sep and count.isdigit():
            found[message.strip()] = int(count)
    return found


@dataclass
class Session:
    engine: Engine
    database_url: str
    redis_url: str
    audit: Audit | None = None
    log: EngineLogSummary | None = None

    @property
    def pid(self) -> int:
        assert self.engine.proc is not None
        return self.engine.proc.pid


@contextmanager
def engine_session(opts: FloodOptions, extra_env: Mapping[str, str]) -> Iterator[Session]:
    """A started, ready engine on a fresh database; audit and log summary set on exit."""
    with scratch_servers() as (database_url, redis_url):
        engine = make_engine(database_url, redis_url, opts)
        engine.env.update(extra_env)
        session = Session(engine, database_url, redis_url)
        try:
            engine.start(timeout=START_TIMEOUT_S)
            wait_ready(engine)
            yield session
        finally:
            engine.stop()
            summary = summarise_engine_log(engine.log_path, top=8)
            kept = str(engine.log_path) if summary.errors else None
            if not kept:
                engine.log_path.unlink(missing_ok=True)
            messages = _messages(summary.text)
            session.log = EngineLogSummary(summary.errors, summary.warnings, summary.text, kept, messages)
            delete_prefix(redis_url, engine.prefix)
            session.audit = run_audit(database_url, redis_url)

"""All configuration, read once from the environment into one typed object.

Every setting the code reads is listed here and in `.env.example`; nothing else
calls `os.environ` for configuration (the supervisor only passes URLs down to the
processes it starts).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a value the engine cannot use; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 3000
    database_url: str | None = None
    redis_url: str | None = None
    # Prefix for every Redis key the engine owns (streams, broker queues, limiter);
    # lets several deployments or test runs share one Redis.
    redis_prefix: str = "oe"
    data_dir: Path = REPO_ROOT / ".data"
    queue_max_concurrent: int = 10
    order_processor_rate: int = 100
    max_retries: int = 3
    backoff_base_ms: int = 500
    use_real_devnet: bool = False
    devnet_rpc_url: str = "https://api.devnet.solana.com"
    wallet_private_key: str | None = msgspec.field(default=None)
    log_level: str = "INFO"
    # "console" (readable lines) or "json" (one JSON object per line).
    log_format: str = "console"
    worker_processes: int = 1
    worker_threads: int = 16
    # How long an idle Dramatiq consumer waits on Redis before polling again (ms);
    # lower means faster pick-up and more idle CPU (see docs/architecture.md).
    worker_idle_ms: int = 100
    # Mock DEX: every sleep is multiplied by this; 0 makes the mock instant.
    mock_latency_scale: Decimal = Decimal(1)
    mock_quote_min_ms: int = 200
    mock_quote_max_ms: int = 400
    mock_swap_min_ms: int = 2000
    mock_swap_max_ms: int = 3000
    # Probability (0..1) that a mock swap submission fails with a transient error.
    mock_fail_rate: Decimal = Decimal(0)
    # The first N mock swap submissions in each worker process fail transiently.
    mock_fail_first_n: int = 0
    mock_seed: int | None = None
    # Rebuild a projection (shadow tables, then a swap) when its code is a newer version
    # than the one that built its tables; off: only `orderengine projections rebuild` does.
    projection_auto_rebuild: bool = True
    # The explorer link the mock venues record for a transaction ({tx_hash} is replaced);
    # empty: no link. Mock signatures are well-formed but exist on no cluster.
    mock_explorer_tx_url: str = "https://explorer.solana.com/tx/{tx_hash}?cluster=devnet"
    # Mock market: each tick, token prices move by MARKET_VOLATILITY (log, 1 sigma) and
    # revert toward their reference price by MARKET_REVERSION; 0 volatility freezes them.
    market_tick_ms: int = 1000
    market_volatility: Decimal = Decimal("0.002")
    market_reversion: Decimal = Decimal("0.01")
    # Tokens that launch by themselves at a set time: "LAUNCH=2026-11-24T20:00:00Z,…".
    mock_launches: dict[str, datetime] = {}
    default_slippage: Decimal = Decimal("0.01")
    max_slippage: Decimal = Decimal("0.5")
    quote_timeout_ms: int = 2000
    # Retention of the Redis streams; Postgres keeps everything, and subscribers
    # read history from Postgres, so trimming never loses an event.
    # Limit orders: how often waiting orders are re-quoted, and their lifetime
    # when the order gives no expiresAt (and the longest it may ask for).
    limit_recheck_interval_ms: int = 2000
    limit_default_ttl_s: int = 3600
    limit_max_ttl_s: int = 7 * 86_400
    # An executing order whose last event is older than this is re-driven, checked
    # every STUCK_CHECK_INTERVAL_S. Keep it above the slowest step (a swap, 2–3 s).
    stuck_after_s: int = 60
    stuck_check_interval_s: int = 10
    # Dramatiq: how long before a silent worker's messages go back to the queue.
    worker_heartbeat_timeout_ms: int = 60_000
    stream_maxlen: int = 100_000
    order_stream_ttl_s: int = 86_400
    # API keys, key -> userId ("key1:alice,key2:bob"). Empty: the API runs open (with a
    # warning at start-up). Never logged.
    api_keys: dict[str, str] = {}
    # Per-user order submissions: a sustained rate per minute and a burst on top (0 = no limit).
    order_rate_per_min: int = 600
    order_rate_burst: int = 60
    # Open WebSocket connections per user in one API process (0 = no limit).
    ws_max_connections_per_user: int = 100
    # Protocol-level ping/pong: a ping every WS_PING_INTERVAL_S; no pong within
    # WS_PING_TIMEOUT_S closes the connection (0 turns pings off).
    ws_ping_interval_s: float = 20.0
    ws_ping_timeout_s: float = 20.0
    # Close an order's stream with 1000 after its final event (false: keep it open).
    ws_close_on_terminal: bool = True
    # Where processes share Prometheus metrics (multiprocess mode); default DATA_DIR/metrics.
    metrics_dir: Path | None = None

    def __repr__(self) -> str:  # never print the wallet key
        fields = {f: getattr(self, f) for f in self.__struct_fields__}
        if fields["wallet_private_key"]:
            fields["wallet_private_key"] = "***"
        fields["api_keys"] = f"<{len(self.api_keys)} keys, users {sorted(set(self.api_keys.values()))}>"
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    __str__ = __repr__

    @property
    def metrics_path(self) -> Path:
        return self.metrics_dir or self.data_dir / "metrics"

    @property
    def has_external_servers(self) -> bool:
        return self.database_url is not None and self.redis_url is not None


# env var -> (field, parser). BULL_CONCURRENCY is the brief's name for the same limit.
def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _decimal(raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None
    if not value.is_finite():
        raise ValueError("expected a finite number")
    return value


def _launches(raw: str) -> dict[str, datetime]:
    schedule: dict[str, datetime] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        token, sep, when = item.partition("=")
        if not sep:
            raise ValueError(f"expected TOKEN=ISO-8601 time, got {item!r}")
        at = datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise ValueError(f"{item!r}: the time needs a timezone")
        schedule[token.strip()] = at
    return schedule


def _api_keys(raw: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for number, item in enumerate(filter(None, (part.strip() for part in raw.split(","))), 1):
        key, sep, user = item.rpartition(":")
        # The message names the pair by number: the key itself must never be printed.
        if not sep or not key or not user.strip():
            raise _SecretValueError(f"pair {number}: expected KEY:USER_ID")
        if len(key) < 16:
            raise _SecretValueError(f"pair {number}: a key must be at least 16 characters")
        keys[key] = user.strip()
    return keys


class _SecretValueError(ValueError):
    """A bad secret value: its message is safe to print, the raw value is not."""


def _optional_str(raw: str) -> str | None:
    return raw or None


def _optional_int(raw: str) -> int | None:
    return int(raw) if raw.strip() else None


_ENV: dict[str, tuple[str, object]] = {
    "HOST": ("host", str),
    "PORT": ("port", int),
    "DATABASE_URL": ("database_url", _optional_str),
    "REDIS_URL": ("redis_url", _optional_str),
    "REDIS_PREFIX": ("redis_prefix", str),
    "DATA_DIR": ("data_dir", Path),
    "BULL_CONCURRENCY": ("queue_max_concurrent", int),
    "QUEUE_MAX_CONCURRENT": ("queue_max_concurrent", int),
    "ORDER_PROCESSOR_RATE": ("order_processor_rate", int),
    "MAX_RETRIES": ("max_retries", int),
    "BACKOFF_BASE_MS": ("backoff_base_ms", int),
    "USE_REAL_DEVNET": ("use_real_devnet", _bool),
    "DEVNET_RPC_URL": ("devnet_rpc_url", str),
    "WALLET_PRIVATE_KEY": ("wallet_private_key", _optional_str),
    "LOG_LEVEL": ("log_level", str.upper),
    "LOG_FORMAT": ("log_format", str.lower),
    "WORKER_PROCESSES": ("worker_processes", int),
    "WORKER_THREADS": ("worker_threads", int),
    "WORKER_IDLE_MS": ("worker_idle_ms", int),
    "MOCK_LATENCY_SCALE": ("mock_latency_scale", _decimal),
    "MOCK_QUOTE_MIN_MS": ("mock_quote_min_ms", int),
    "MOCK_QUOTE_MAX_MS": ("mock_quote_max_ms", int),
    "MOCK_SWAP_MIN_MS": ("mock_swap_min_ms", int),
    "MOCK_SWAP_MAX_MS": ("mock_swap_max_ms", int),
    "MOCK_FAIL_RATE": ("mock_fail_rate", _decimal),
    "MOCK_FAIL_FIRST_N": ("mock_fail_first_n", int),
    "MOCK_SEED": ("mock_seed", _optional_int),
    "MOCK_EXPLORER_TX_URL": ("mock_explorer_tx_url", str),
    "PROJECTION_AUTO_REBUILD": ("projection_auto_rebuild", _bool),
    "MARKET_TICK_MS": ("market_tick_ms", int),
    "MARKET_VOLATILITY": ("market_volatility", _decimal),
    "MARKET_REVERSION": ("market_reversion", _decimal),
    "MOCK_LAUNCHES": ("mock_launches", _launches),
    "DEFAULT_SLIPPAGE": ("default_slippage", _decimal),
    "MAX_SLIPPAGE": ("max_slippage", _decimal),
    "QUOTE_TIMEOUT_MS": ("quote_timeout_ms", int),
    "LIMIT_RECHECK_INTERVAL_MS": ("limit_recheck_interval_ms", int),
    "LIMIT_DEFAULT_TTL_S": ("limit_default_ttl_s", int),
    "LIMIT_MAX_TTL_S": ("limit_max_ttl_s", int),
    "STUCK_AFTER_S": ("stuck_after_s", int),
    "STUCK_CHECK_INTERVAL_S": ("stuck_check_interval_s", int),
    "WORKER_HEARTBEAT_TIMEOUT_MS": ("worker_heartbeat_timeout_ms", int),
    "STREAM_MAXLEN": ("stream_maxlen", int),
    "ORDER_STREAM_TTL_S": ("order_stream_ttl_s", int),
    "API_KEYS": ("api_keys", _api_keys),
    "ORDER_RATE_PER_MIN": ("order_rate_per_min", int),
    "ORDER_RATE_BURST": ("order_rate_burst", int),
    "WS_MAX_CONNECTIONS_PER_USER": ("ws_max_connections_per_user", int),
    "WS_PING_INTERVAL_S": ("ws_ping_interval_s", float),
    "WS_PING_TIMEOUT_S": ("ws_ping_timeout_s", float),
    "WS_CLOSE_ON_TERMINAL": ("ws_close_on_terminal", _bool),
    "METRICS_DIR": ("metrics_dir", Path),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, (field, parse) in _ENV.items():
        raw = env.get(name)
        if raw is None:
            continue
        try:
            values[field] = parse(raw)  # type: ignore[operator]
        except _SecretValueError as exc:
            raise SettingsError(f"{name} is invalid: {exc}") from None
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None
    settings = Settings(**values)  # type: ignore[arg-type]
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    problems = []
    if not 1 <= s.port <= 65535:
        problems.append("PORT must be between 1 and 65535")
    if s.queue_max_concurrent < 1:
        problems.append("QUEUE_MAX_CONCURRENT must be at least 1")
    if s.order_processor_rate < 1:
        problems.append("ORDER_PROCESSOR_RATE must be at least 1")
    if s.max_retries < 1:
        problems.append("MAX_RETRIES must be at least 1 (it counts attempts)")
    if s.backoff_base_ms < 0:
        problems.append("BACKOFF_BASE_MS must not be negative")
    if s.mock_latency_scale < 0:
        problems.append("MOCK_LATENCY_SCALE must not be negative")
    if s.mock_quote_min_ms > s.mock_quote_max_ms or s.mock_swap_min_ms > s.mock_swap_max_ms:
        problems.append("MOCK_*_MIN_MS must not exceed MOCK_*_MAX_MS")
    if not 0 <= s.mock_fail_rate <= 1:
        problems.append("MOCK_FAIL_RATE must be between 0 and 1")
    if not 0 <= s.default_slippage <= s.max_slippage < 1:
        problems.append("need 0 <= DEFAULT_SLIPPAGE <= MAX_SLIPPAGE < 1")
    if s.worker_processes < 1 or s.worker_threads < 1:
        problems.append("WORKER_PROCESSES and WORKER_THREADS must be at least 1")
    if s.market_tick_ms < 10 or not 0 <= s.market_volatility < 1 or not 0 <= s.market_reversion <= 1:
        problems.append("need MARKET_TICK_MS >= 10, 0 <= MARKET_VOLATILITY < 1, 0 <= MARKET_REVERSION <= 1")
    if s.limit_recheck_interval_ms < 10:
        problems.append("LIMIT_RECHECK_INTERVAL_MS must be at least 10")
    if not 1 <= s.limit_default_ttl_s <= s.limit_max_ttl_s:
        problems.append("need 1 <= LIMIT_DEFAULT_TTL_S <= LIMIT_MAX_TTL_S")
    if s.stuck_after_s < 1 or s.stuck_check_interval_s < 1:
        problems.append("STUCK_AFTER_S and STUCK_CHECK_INTERVAL_S must be at least 1")
    if s.worker_heartbeat_timeout_ms < 1000:
        problems.append("WORKER_HEARTBEAT_TIMEOUT_MS must be at least 1000")
    if s.stream_maxlen < 1000 or s.order_stream_ttl_s < 60:
        problems.append("STREAM_MAXLEN must be at least 1000 and ORDER_STREAM_TTL_S at least 60")
    if s.order_rate_per_min < 0 or s.order_rate_burst < 0:
        problems.append("ORDER_RATE_PER_MIN and ORDER_RATE_BURST must not be negative")
    if s.ws_max_connections_per_user < 0:
        problems.append("WS_MAX_CONNECTIONS_PER_USER must not be negative")
    if s.ws_ping_interval_s < 0 or s.ws_ping_timeout_s < 0:
        problems.append("WS_PING_INTERVAL_S and WS_PING_TIMEOUT_S must not be negative")
    from domain.tokens import TOKENS

    unknown = [t for t in s.mock_launches if t not in TOKENS]
    if unknown:
        problems.append(f"MOCK_LAUNCHES names unknown tokens: {', '.join(unknown)}")
    if s.log_format not in {"console", "json"}:
        problems.append("LOG_FORMAT must be console or json")
    if s.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        problems.append("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    if s.mock_explorer_tx_url and "{tx_hash}" not in s.mock_explorer_tx_url:
        problems.append("MOCK_EXPLORER_TX_URL must contain {tx_hash} (or be empty for no link)")
    if s.use_real_devnet:
        problems.append("USE_REAL_DEVNET=true is not available yet: only the mock DEX is built")
    if problems:
        raise SettingsError("; ".join(problems))

"""All configuration, read once from the environment into one typed object.

`Settings` is the whole declaration: each field's environment variable is its name in
upper case (`rename="upper"`), its type carries its allowed values (`Meta(ge=…, le=…)`,
`Literal`), and msgspec converts the environment's strings into it. The bounds are
what the engine can run with: a value that would break at run time (a Redis argument
out of range, a `datetime + timedelta` overflow, a timer that never fires) is refused
at start-up with the variable's name, its value and the allowed range. Rules that join
several settings live in adapters/settings_rules.py.

Every setting is listed with its range in `.env.example`; nothing else calls
`os.environ` for configuration (the supervisor only passes URLs down to the processes
it starts).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec
import msgspec.inspect as mi
from msgspec import Meta

from adapters.settings_rules import MAX_MOCK_DELAY_MS, RULES

REPO_ROOT = Path(__file__).resolve().parent.parent

SECRET = "secret"  # Meta(extra=…) key: the value is never printed, not even in an error
ALIASES = "aliases"  # Meta(extra=…) key: other variable names accepted for the field
PAIRS = "pairs"  # Meta(extra=…) key: a dict read from "key<sep>value,…"


def dec(*, ge: str | None = None, le: str | None = None, lt: str | None = None) -> Meta:
    """Bounds of a Decimal field. msgspec 0.22 allows `ge`/`le` only on int and float, so
    they ride in `extra` and `load_settings` checks them (and refuses NaN and infinities)."""
    bounds = {k: Decimal(v) for k, v in (("ge", ge), ("le", le), ("lt", lt)) if v is not None}
    return Meta(extra=bounds)


DAY_S = 86_400


class SettingsError(ValueError):
    """One or more settings have values the engine cannot use; each problem names its variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65_535)] = 3000
    database_url: str | None = None
    redis_url: str | None = None
    # Prefix for every Redis key the engine owns (streams, broker queues, limiter);
    # lets several deployments or test runs share one Redis.
    redis_prefix: Annotated[str, Meta(min_length=1)] = "oe"
    data_dir: Path = REPO_ROOT / ".data"
    # BULL_CONCURRENCY is the brief's name for the same limit.
    queue_max_concurrent: Annotated[int, Meta(ge=1, le=1_000_000, extra={ALIASES: ("BULL_CONCURRENCY",)})] = (
        10
    )
    order_processor_rate: Annotated[int, Meta(ge=1, le=6_000_000)] = 100
    max_retries: Annotated[int, Meta(ge=1, le=100)] = 3
    # Retry delays are capped at 60 s (domain/backoff.py): a larger base means nothing more.
    backoff_base_ms: Annotated[int, Meta(ge=0, le=60_000)] = 500
    # Trade on chain (Raydium CPMM and Meteora DAMM v2 through DEVNET_RPC_URL) instead of the
    # mock; the pools come from SOLANA_POOLS_FILE and the swaps are signed by WALLET_PRIVATE_KEY.
    use_real_devnet: bool = False
    devnet_rpc_url: str = "https://api.devnet.solana.com"
    # base58 secret key or a JSON byte array (solana-keygen's file); never logged.
    wallet_private_key: Annotated[str | None, Meta(extra={SECRET: True})] = None
    # The pools to trade (docs/devnet.md); default DATA_DIR/localnet/pools.json, where
    # `orderengine localnet` writes the local chain's.
    solana_pools_file: Path | None = None
    solana_commitment: Literal["processed", "confirmed", "finalized"] = "confirmed"
    solana_rpc_timeout_ms: Annotated[int, Meta(ge=100, le=120_000)] = 10_000
    # Priority fee (micro-lamports per compute unit): the recent fees' 75th percentile for
    # the pool's accounts, at least the floor and at most the cap.
    solana_priority_fee_floor: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 0
    solana_priority_fee_cap: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 200_000
    # The compute-unit limit is the simulation's units times this.
    solana_compute_unit_headroom: Annotated[Decimal, dec(ge="1", le="4")] = Decimal("1.3")
    # How long one confirm step waits for a landing before it hands back and asks again later.
    solana_confirm_timeout_ms: Annotated[int, Meta(ge=100, le=300_000)] = 20_000
    solana_poll_interval_ms: Annotated[int, Meta(ge=10, le=10_000)] = 500
    solana_rebroadcast_interval_ms: Annotated[int, Meta(ge=100, le=60_000)] = 2_000
    # A swap whose blockhash expired unlanded is signed again at most this many times.
    solana_max_reissues: Annotated[int, Meta(ge=0, le=20)] = 3
    solana_explorer_tx_url: str = "https://explorer.solana.com/tx/{tx_hash}?cluster=devnet"
    # A pool state read this many slots behind the newest slot seen is stale (left out).
    solana_max_slot_lag: Annotated[int, Meta(ge=1, le=1_000_000)] = 150
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # "console" (readable lines) or "json" (one JSON object per line).
    log_format: Literal["console", "json"] = "console"
    worker_processes: Annotated[int, Meta(ge=1, le=64)] = 1
    # Steps a worker process runs at once (Dramatiq threads handing them to one event loop).
    worker_threads: Annotated[int, Meta(ge=1, le=256)] = 16
    # How long an idle Dramatiq consumer trusts its queue's wake-up channel before it polls
    # Redis anyway (ms): a message is fetched as soon as it is sent; this bounds only a
    # wake-up lost while Redis reconnects (adapters/dramatiq_broker.py).
    worker_idle_ms: Annotated[int, Meta(ge=1, le=5_000)] = 1000
    # Mock DEX: every sleep is multiplied by this; 0 makes the mock instant.
    mock_latency_scale: Annotated[Decimal, dec(ge="0", le="100")] = Decimal(1)
    mock_quote_min_ms: Annotated[int, Meta(ge=0, le=MAX_MOCK_DELAY_MS)] = 200
    mock_quote_max_ms: Annotated[int, Meta(ge=0, le=MAX_MOCK_DELAY_MS)] = 400
    mock_swap_min_ms: Annotated[int, Meta(ge=0, le=MAX_MOCK_DELAY_MS)] = 2000
    mock_swap_max_ms: Annotated[int, Meta(ge=0, le=MAX_MOCK_DELAY_MS)] = 3000
    # Probability (0..1) that a mock swap submission fails with a transient error.
    mock_fail_rate: Annotated[Decimal, dec(ge="0", le="1")] = Decimal(0)
    # The first N mock swap submissions in each worker process fail transiently.
    mock_fail_first_n: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 0
    mock_seed: int | None = None
    # Rebuild a projection (shadow tables, then a swap) when its code is a newer version
    # than the one that built its tables; off: only `orderengine projections rebuild` does.
    projection_auto_rebuild: bool = True
    # The explorer link the mock venues record for a transaction ({tx_hash} is replaced);
    # empty: no link. Mock signatures are well-formed but exist on no cluster.
    mock_explorer_tx_url: str = "https://explorer.solana.com/tx/{tx_hash}?cluster=devnet"
    # Mock market: each tick, token prices move by MARKET_VOLATILITY (log, 1 sigma) and
    # revert toward their reference price by MARKET_REVERSION; 0 volatility freezes them.
    # Intervals are APScheduler jobs: at most a day.
    market_tick_ms: Annotated[int, Meta(ge=10, le=DAY_S * 1000)] = 1000
    market_volatility: Annotated[Decimal, dec(ge="0", lt="1")] = Decimal("0.002")
    market_reversion: Annotated[Decimal, dec(ge="0", le="1")] = Decimal("0.01")
    # Tokens that launch by themselves at a set time: "LAUNCH=2026-11-24T20:00:00Z,…".
    mock_launches: Annotated[dict[str, Annotated[datetime, Meta(tz=True)]], Meta(extra={PAIRS: "="})] = {}
    default_slippage: Annotated[Decimal, dec(ge="0", lt="1")] = Decimal("0.01")
    max_slippage: Annotated[Decimal, dec(ge="0", lt="1")] = Decimal("0.5")
    quote_timeout_ms: Annotated[int, Meta(ge=1, le=60_000)] = 2000
    # Limit orders: how often waiting orders are re-quoted, and their lifetime
    # when the order gives no expiresAt (and the longest it may ask for).
    limit_recheck_interval_ms: Annotated[int, Meta(ge=10, le=DAY_S * 1000)] = 2000
    limit_default_ttl_s: Annotated[int, Meta(ge=1, le=365 * DAY_S)] = 3600
    limit_max_ttl_s: Annotated[int, Meta(ge=1, le=365 * DAY_S)] = 7 * DAY_S
    # An executing order whose last event is older than this is re-driven, checked
    # every STUCK_CHECK_INTERVAL_S. Keep it above the slowest step (a swap, 2–3 s).
    stuck_after_s: Annotated[int, Meta(ge=1, le=7 * DAY_S)] = 60
    stuck_check_interval_s: Annotated[int, Meta(ge=1, le=DAY_S)] = 10
    # Dramatiq: how long before a silent worker's messages go back to the queue.
    worker_heartbeat_timeout_ms: Annotated[int, Meta(ge=1000, le=3_600_000)] = 60_000
    # Retention of the Redis streams; Postgres keeps everything, and subscribers
    # read history from Postgres, so trimming never loses an event.
    stream_maxlen: Annotated[int, Meta(ge=1000, le=10_000_000)] = 100_000
    order_stream_ttl_s: Annotated[int, Meta(ge=60, le=365 * DAY_S)] = DAY_S
    # API keys, key -> userId ("key1:alice,key2:bob"). Empty: the API runs open (with a
    # warning at start-up). Never logged.
    api_keys: Annotated[
        dict[Annotated[str, Meta(min_length=16)], Annotated[str, Meta(min_length=1)]],
        Meta(extra={SECRET: True, PAIRS: ":"}),
    ] = {}
    # Operator keys ("key1,key2"): each may read, follow and cancel every user's order
    # (and places orders for the body's userId). Needs no API_KEYS, but with none of
    # either the API is open. Never logged.
    operator_keys: Annotated[frozenset[Annotated[str, Meta(min_length=16)]], Meta(extra={SECRET: True})] = (
        frozenset()
    )
    # Per-user order submissions: a sustained rate per minute and a burst on top (0 = no limit).
    order_rate_per_min: Annotated[int, Meta(ge=0, le=6_000_000)] = 600
    order_rate_burst: Annotated[int, Meta(ge=0, le=1_000_000)] = 60
    # Open WebSocket connections per user in one API process (0 = no limit).
    ws_max_connections_per_user: Annotated[int, Meta(ge=0, le=1_000_000)] = 100
    # Protocol-level ping/pong: a ping every WS_PING_INTERVAL_S; no pong within
    # WS_PING_TIMEOUT_S closes the connection (0 turns pings off).
    ws_ping_interval_s: Annotated[float, Meta(ge=0, le=3600)] = 20.0
    ws_ping_timeout_s: Annotated[float, Meta(ge=0, le=3600)] = 20.0
    # Close an order's stream with 1000 after its final event (false: keep it open).
    ws_close_on_terminal: bool = True
    # Where processes share Prometheus metrics (multiprocess mode); default DATA_DIR/metrics.
    metrics_dir: Path | None = None

    def __repr__(self) -> str:  # never print a secret
        shown = []
        for f in _FIELDS:
            value = getattr(self, f.name)
            if f.name == "api_keys":
                text = f"<{len(value)} keys, users {sorted(set(value.values()))}>"
            elif f.name == "operator_keys":
                text = f"<{len(value)} keys>"
            elif f.secret and value:
                text = "'***'"
            elif f.name in ("database_url", "redis_url") and value:
                from adapters.preflight import mask_url  # a URL's password is never printed

                text = repr(mask_url(value))
            else:
                text = repr(value)
            shown.append(f"{f.name}={text}")
        return "Settings(" + ", ".join(shown) + ")"

    __str__ = __repr__

    @property
    def pools_path(self) -> Path:
        return self.solana_pools_file or self.data_dir / "localnet" / "pools.json"

    @property
    def metrics_path(self) -> Path:
        return self.metrics_dir or self.data_dir / "metrics"

    @property
    def has_external_servers(self) -> bool:
        return self.database_url is not None and self.redis_url is not None


# --- Reading the environment ---------------------------------------------------------


class _Invalid(Exception):
    """A value refused; `reason` is safe to print even for a secret."""

    def __init__(self, reason: str, *, out_of_range: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.out_of_range = out_of_range


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class _Field:
    """One setting as `load_settings` reads it."""

    name: str
    env: tuple[str, ...]  # the variable, then its aliases (the variable wins if both are set)
    type: Any
    info: mi.Type  # without the Metadata wrapper
    extra: dict[str, Any]
    optional: bool

    @property
    def secret(self) -> bool:
        return bool(self.extra.get(SECRET))

    def parse(self, raw: str) -> object:
        text = raw.strip()
        if self.optional and not text:
            return None
        info = self.info
        if isinstance(info, mi.BoolType):
            text = "true" if text.lower() in _TRUE else "false" if text.lower() in _FALSE else text
        elif isinstance(info, mi.LiteralType):  # LOG_LEVEL=info is INFO
            text = next((v for v in info.values if str(v).lower() == text.lower()), text)
        elif isinstance(info, mi.DictType):
            return self._pairs(text, info)
        elif isinstance(info, mi.FrozenSetType):
            return self._items(text, info)
        value = _convert(text, self.type, info)
        if isinstance(info, mi.DecimalType):
            _check_decimal(value, self.extra)
        return value

    def _pairs(self, text: str, info: mi.DictType) -> dict[Any, Any]:
        sep, pairs = self.extra[PAIRS], {}
        key_type, value_type = get_args(get_args(self.type)[0])  # Annotated[dict[K, V], Meta]
        for number, item in enumerate(filter(None, (part.strip() for part in text.split(","))), 1):
            which = f"pair {number}" if self.secret else f"pair {number} ({item!r})"
            key, found, value = item.rpartition(sep)
            if not found or not key.strip() or not value.strip():
                raise _Invalid(f"{which}: expected KEY{sep}VALUE")
            try:
                k = _convert(key.strip(), key_type, info.key_type, what="the key")
                pairs[k] = _convert(value.strip(), value_type, info.value_type, what="the value")
            except _Invalid as exc:
                raise _Invalid(f"{which}: {exc.reason}") from None
        return pairs

    def _items(self, text: str, info: mi.FrozenSetType) -> frozenset[Any]:
        item_type = get_args(get_args(self.type)[0])[0]  # Annotated[frozenset[T], Meta]
        items = []
        for number, item in enumerate(filter(None, (part.strip() for part in text.split(","))), 1):
            try:
                items.append(_convert(item, item_type, info.item_type, what="the item"))
            except _Invalid as exc:
                which = f"item {number}" if self.secret else f"item {number} ({item!r})"
                raise _Invalid(f"{which}: {exc.reason}") from None
        return frozenset(items)


def _dec_hook(tp: type, obj: object) -> object:
    if tp is Path and isinstance(obj, str):
        return Path(obj)
    raise NotImplementedError


_EXPECTED: dict[type[mi.Type], tuple[type, str]] = {
    mi.IntType: (int, "an integer"),
    mi.FloatType: (float, "a number"),
    mi.DecimalType: (Decimal, "a decimal number"),
    mi.BoolType: (bool, "true or false"),
    mi.StrType: (str, "text"),
    mi.DateTimeType: (datetime, "an RFC 3339 time"),
    mi.CustomType: (Path, "a path"),
}


def _convert(text: str, tp: Any, info: mi.Type, what: str = "") -> Any:
    """`text` as `tp` by msgspec; a refusal says why (out of range, or what was expected)."""
    try:
        return msgspec.convert(text, tp, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError:
        pass
    subject = f"{what} " if what else ""
    not_a = f"{what} is not" if what else "expected"
    if isinstance(info, mi.LiteralType):
        choices = get_args(tp) or info.values  # as declared (msgspec sorts them)
        raise _Invalid(f"{subject}must be one of {', '.join(map(str, choices))}") from None
    if isinstance(info, mi.DateTimeType) and info.tz:
        if _parses(text, datetime):
            raise _Invalid(f"{subject}needs a timezone (e.g. 2026-11-24T20:00:00Z)") from None
        raise _Invalid(f"{not_a} an RFC 3339 time with a timezone (e.g. 2026-11-24T20:00:00Z)") from None
    base, expected = _EXPECTED.get(type(info), (object, "a valid value"))
    if _parses(text, base):
        # Text too short is "invalid"; a number beyond its bounds is "out of range".
        raise _Invalid(
            f"{subject}{_allowed(info, {})}", out_of_range=not isinstance(info, mi.StrType)
        ) from None
    raise _Invalid(f"{not_a} {expected}") from None


def _parses(text: str, tp: Any) -> bool:
    try:
        msgspec.convert(text, tp, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError:
        return False
    return True


def _check_decimal(value: Decimal, bounds: dict[str, Any]) -> None:
    if not value.is_finite():
        raise _Invalid("expected a finite number")
    ge, le, lt = bounds.get("ge"), bounds.get("le"), bounds.get("lt")
    if (ge is not None and value < ge) or (le is not None and value > le) or (lt is not None and value >= lt):
        raise _Invalid(_allowed(mi.DecimalType(), bounds), out_of_range=True)


def _allowed(info: mi.Type, bounds: dict[str, Any]) -> str:
    """The allowed range of a numeric or text type, in words."""
    if isinstance(info, mi.StrType):
        shortest = info.min_length or 0
        return f"must be at least {shortest} characters" if shortest > 1 else "must not be empty"
    limits = {**bounds, **{k: v for k in ("ge", "le", "lt") if (v := getattr(info, k, None)) is not None}}
    ge, le, lt = limits.get("ge"), limits.get("le"), limits.get("lt")
    if ge is not None and le is not None:
        return f"must be between {ge} and {le}"
    if ge is not None and lt is not None:
        return f"must be at least {ge} and below {lt}"
    if ge is not None:
        return f"must be at least {ge}"
    return f"must be at most {le}" if le is not None else "is not allowed"


def _field(f: msgspec.structs.FieldInfo, info: mi.Type) -> _Field:
    extra: dict[str, Any] = {}
    if isinstance(info, mi.Metadata):
        extra, info = dict(info.extra or {}), info.type
    optional = False
    if isinstance(info, mi.UnionType):
        others = [t for t in info.types if not isinstance(t, mi.NoneType)]
        optional, info = len(others) < len(info.types), others[0]
    if isinstance(info, mi.Metadata):  # Annotated[X, Meta(…)] | None
        extra, info = {**extra, **(info.extra or {})}, info.type
    return _Field(f.name, (f.encode_name, *extra.get(ALIASES, ())), f.type, info, extra, optional)


_FIELDS: tuple[_Field, ...] = tuple(
    _field(f, i.type)
    for f, i in zip(msgspec.structs.fields(Settings), mi.type_info(Settings).fields, strict=True)  # type: ignore[attr-defined]
)
# Every accepted variable -> its field.
ENV_VARS: dict[str, str] = {name: f.name for f in _FIELDS for name in f.env}


def _shown(raw: str) -> str:
    return shlex.quote(raw) if raw else "''"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `environ` (default: the process environment).

    Raises SettingsError listing every refused value, each with its variable's name.
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    problems: list[str] = []
    for f in _FIELDS:
        var = next((name for name in f.env if name in env), None)
        if var is None:
            continue
        raw = env[var]
        try:
            values[f.name] = f.parse(raw)
        except _Invalid as exc:
            # A secret's value is never shown; a list of pairs names the pair instead.
            listed = isinstance(f.info, mi.DictType | mi.FrozenSetType)
            named = var if f.secret or listed else f"{var}={_shown(raw)}"
            problems.append(f"{named} is {'out of range' if exc.out_of_range else 'invalid'}: {exc.reason}")
    settings = Settings(**values)  # type: ignore[arg-type]  # each value has its field's type
    refused = {f.name for f in _FIELDS if f.name not in values and any(n in env for n in f.env)}
    for fields, check in RULES:
        if refused.isdisjoint(fields) and (problem := check(settings)) is not None:
            problems.append(problem)
    if problems:
        raise SettingsError(problems)
    return settings

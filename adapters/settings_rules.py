"""The rules that join several settings: each checks fields whose own values were valid
and returns a message naming the variables and their values, or None.

Apart from adapters/settings.py (the declaration and the reading of the environment) so
that each rule is found by what it relates; `load_settings` runs every rule registered
here with `_rule`, after each setting passed its own type and bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.tokens import TOKENS

if TYPE_CHECKING:
    from adapters.settings import Settings

# The longest a single mock DEX delay may take (ms, after MOCK_LATENCY_SCALE): well below
# Dramatiq's 10-minute actor time limit and the 5-minute in-flight lease of an order.
MAX_MOCK_DELAY_MS = 60_000


RULES: list[tuple[tuple[str, ...], Callable[[Settings], str | None]]] = []


def _rule(*fields: str) -> Callable[[Callable[[Settings], str | None]], Callable[[Settings], str | None]]:
    def register(check: Callable[[Settings], str | None]) -> Callable[[Settings], str | None]:
        RULES.append((fields, check))
        return check

    return register


def longest_mock_delay_ms(s: Settings) -> Decimal:
    """The longest single sleep of the mock DEX, after scaling."""
    return max(s.mock_quote_max_ms, s.mock_swap_max_ms) * s.mock_latency_scale


@_rule("api_keys", "operator_keys")
def _key_roles(s: Settings) -> str | None:
    # Which key is shared is not said: naming it would print a secret.
    shared = len(s.operator_keys & s.api_keys.keys())
    if not shared:
        return None
    return f"OPERATOR_KEYS and API_KEYS share {shared} key(s): a key is either a user's or an operator's"


@_rule("mock_quote_min_ms", "mock_quote_max_ms")
def _quote_delays(s: Settings) -> str | None:
    if s.mock_quote_min_ms <= s.mock_quote_max_ms:
        return None
    return f"MOCK_QUOTE_MIN_MS={s.mock_quote_min_ms} must not exceed MOCK_QUOTE_MAX_MS={s.mock_quote_max_ms}"


@_rule("mock_swap_min_ms", "mock_swap_max_ms")
def _swap_delays(s: Settings) -> str | None:
    if s.mock_swap_min_ms <= s.mock_swap_max_ms:
        return None
    return f"MOCK_SWAP_MIN_MS={s.mock_swap_min_ms} must not exceed MOCK_SWAP_MAX_MS={s.mock_swap_max_ms}"


@_rule("mock_quote_max_ms", "mock_swap_max_ms", "mock_latency_scale")
def _mock_delay_cap(s: Settings) -> str | None:
    longest = longest_mock_delay_ms(s)
    if longest <= MAX_MOCK_DELAY_MS:
        return None
    return (
        f"MOCK_LATENCY_SCALE={s.mock_latency_scale} makes the longest mock delay "
        f"(max(MOCK_QUOTE_MAX_MS, MOCK_SWAP_MAX_MS) x scale) {longest.normalize():f} ms: it must be at "
        f"most {MAX_MOCK_DELAY_MS} ms (a step must finish well within the in-flight lease)"
    )


@_rule("quote_timeout_ms", "mock_quote_min_ms", "mock_latency_scale")
def _quote_timeout(s: Settings) -> str | None:
    fastest = s.mock_quote_min_ms * s.mock_latency_scale
    if s.quote_timeout_ms > fastest:
        return None
    return (
        f"QUOTE_TIMEOUT_MS={s.quote_timeout_ms} must exceed the fastest mock quote "
        f"(MOCK_QUOTE_MIN_MS x MOCK_LATENCY_SCALE = {fastest.normalize():f} ms), or every quote times out"
    )


@_rule(
    "worker_heartbeat_timeout_ms",
    "worker_idle_ms",
    "mock_quote_max_ms",
    "mock_swap_max_ms",
    "mock_latency_scale",
)
def _heartbeat(s: Settings) -> str | None:
    # A worker's heartbeat is its polls and acks: an idle poll or a busy step longer than
    # half the timeout would make a live worker look dead and its messages run twice.
    quiet = max(Decimal(s.worker_idle_ms), longest_mock_delay_ms(s))
    if s.use_real_devnet:
        quiet = max(quiet, Decimal(s.solana_confirm_timeout_ms))
    if s.worker_heartbeat_timeout_ms >= 2 * quiet:
        return None
    return (
        f"WORKER_HEARTBEAT_TIMEOUT_MS={s.worker_heartbeat_timeout_ms} must be at least twice the "
        f"longest a step may wait: WORKER_IDLE_MS, the longest mock delay, or with USE_REAL_DEVNET "
        f"SOLANA_CONFIRM_TIMEOUT_MS ({quiet.normalize():f} ms)"
    )


@_rule("default_slippage", "max_slippage")
def _slippage(s: Settings) -> str | None:
    if s.default_slippage <= s.max_slippage:
        return None
    return f"DEFAULT_SLIPPAGE={s.default_slippage} must not exceed MAX_SLIPPAGE={s.max_slippage}"


@_rule("limit_default_ttl_s", "limit_max_ttl_s")
def _limit_ttl(s: Settings) -> str | None:
    if s.limit_default_ttl_s <= s.limit_max_ttl_s:
        return None
    return f"LIMIT_DEFAULT_TTL_S={s.limit_default_ttl_s} must not exceed LIMIT_MAX_TTL_S={s.limit_max_ttl_s}"


MIN_WS_PING_S = 0.1  # shorter pings flood every connection; a shorter pong wait closes them all


@_rule("ws_ping_interval_s")
def _ping_interval(s: Settings) -> str | None:
    return _off_or_at_least("WS_PING_INTERVAL_S", s.ws_ping_interval_s)


@_rule("ws_ping_timeout_s")
def _ping_timeout(s: Settings) -> str | None:
    return _off_or_at_least("WS_PING_TIMEOUT_S", s.ws_ping_timeout_s)


def _off_or_at_least(name: str, value: float) -> str | None:
    if value == 0 or value >= MIN_WS_PING_S:
        return None
    return f"{name}={value} is out of range: must be 0 (off) or between {MIN_WS_PING_S:g} and 3600"


@_rule("mock_launches")
def _launch_tokens(s: Settings) -> str | None:
    unknown = [t for t in s.mock_launches if t not in TOKENS]
    if not unknown:
        return None
    return f"MOCK_LAUNCHES names unknown tokens: {', '.join(unknown)} (known: {', '.join(TOKENS)})"


@_rule("mock_explorer_tx_url")
def _explorer_url(s: Settings) -> str | None:
    if not s.mock_explorer_tx_url or "{tx_hash}" in s.mock_explorer_tx_url:
        return None
    url = s.mock_explorer_tx_url
    return f"MOCK_EXPLORER_TX_URL must contain {{tx_hash}} (or be empty for no link), got {url!r}"


@_rule("use_real_devnet", "wallet_private_key")
def _wallet(s: Settings) -> str | None:
    if not s.use_real_devnet:
        return None
    from adapters.solana.wallet import WalletKeyError, load_keypair

    if not s.wallet_private_key:
        return "USE_REAL_DEVNET=true needs WALLET_PRIVATE_KEY (base58 secret key or a JSON byte array)"
    try:
        load_keypair(s.wallet_private_key)
    except WalletKeyError as exc:
        return str(exc)
    return None


@_rule("use_real_devnet", "solana_pools_file", "data_dir")
def _pools(s: Settings) -> str | None:
    if not s.use_real_devnet:
        return None
    from adapters.solana.pool_config import PoolConfigError, load_pool_book

    try:
        book = load_pool_book(s.pools_path)
    except PoolConfigError as exc:
        return str(exc)
    if not book.pools:
        return f"SOLANA_POOLS_FILE {s.pools_path} lists no pools"
    return None


@_rule("solana_explorer_tx_url")
def _solana_explorer_url(s: Settings) -> str | None:
    if not s.solana_explorer_tx_url or "{tx_hash}" in s.solana_explorer_tx_url:
        return None
    url = s.solana_explorer_tx_url
    return f"SOLANA_EXPLORER_TX_URL must contain {{tx_hash}} (or be empty for no link), got {url!r}"


@_rule("solana_priority_fee_floor", "solana_priority_fee_cap")
def _priority_fees(s: Settings) -> str | None:
    if s.solana_priority_fee_floor <= s.solana_priority_fee_cap:
        return None
    return (
        f"SOLANA_PRIORITY_FEE_FLOOR={s.solana_priority_fee_floor} must not exceed "
        f"SOLANA_PRIORITY_FEE_CAP={s.solana_priority_fee_cap}"
    )

"""Settings: read once from the environment, every value bounded, secrets masked, documented."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair

from adapters.settings import (
    _FIELDS,
    ENV_VARS,
    MAX_MOCK_DELAY_MS,
    REPO_ROOT,
    Settings,
    SettingsError,
    load_settings,
)

FIELDS = {f.name: f for f in _FIELDS}
PINGS = ("ws_ping_interval_s", "ws_ping_timeout_s")  # 0 (off) or 0.1 to 3600


def bounds(name: str) -> tuple[Any, Any, bool]:
    """(lowest, highest, highest excluded) of a numeric setting, as declared."""
    f = FIELDS[name]
    source = (
        f.extra if isinstance(f.info, mi.DecimalType) else {k: getattr(f.info, k) for k in ("ge", "le", "lt")}
    )
    high = source.get("le") if source.get("le") is not None else source.get("lt")
    return source.get("ge"), high, source.get("le") is None


BOUNDED = [
    f.name
    for f in _FIELDS
    if isinstance(f.info, mi.IntType | mi.FloatType | mi.DecimalType) and bounds(f.name)[1]
]


def var(name: str) -> str:
    return FIELDS[name].env[0]


def refusal(env: dict[str, str]) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return caught.value


def test_defaults_follow_the_brief() -> None:
    s = load_settings({})
    assert (s.queue_max_concurrent, s.order_processor_rate, s.max_retries, s.backoff_base_ms) == (
        10,
        100,
        3,
        500,
    )
    assert s.use_real_devnet is False and s.mock_latency_scale == Decimal(1)


def test_every_field_is_read_from_its_name_in_upper_case() -> None:
    assert [f.env[0] for f in _FIELDS] == [name.upper() for name in Settings.__struct_fields__]
    assert set(ENV_VARS.values()) == set(Settings.__struct_fields__)


def test_every_default_is_within_its_own_bounds() -> None:
    defaults = Settings()
    environ = {var(name): str(getattr(defaults, name)) for name in BOUNDED}
    assert load_settings(environ) == load_settings({})


def test_bull_concurrency_is_the_brief_name_for_the_in_flight_limit() -> None:
    assert load_settings({"BULL_CONCURRENCY": "4"}).queue_max_concurrent == 4
    assert load_settings({"BULL_CONCURRENCY": "4", "QUEUE_MAX_CONCURRENT": "6"}).queue_max_concurrent == 6
    assert "BULL_CONCURRENCY=0 is out of range" in str(refusal({"BULL_CONCURRENCY": "0"}))


def test_the_example_rate_is_refused_with_its_name_value_and_range() -> None:
    assert str(refusal({"ORDER_RATE_PER_MIN": "10000000"})) == (
        "ORDER_RATE_PER_MIN=10000000 is out of range: must be between 0 and 6000000"
    )


@pytest.mark.parametrize("name", BOUNDED)
def test_one_past_each_bound_is_refused_with_the_range(name: str) -> None:
    low, high, excluded = bounds(name)
    step = 1 if isinstance(FIELDS[name].info, mi.IntType) else Decimal("0.001")
    above = high if excluded else high + step
    allowed = f"at least {low} and below {high}" if excluded else f"between {low} and {high}"
    for value in (above, low - step):
        message = str(refusal({var(name): str(value)}))
        assert message.startswith(f"{var(name)}={value} is out of range: must be "), message
        if name not in PINGS or value == above:
            assert allowed in message


def test_every_problem_is_reported_at_once() -> None:
    problems = refusal(
        {"PORT": "0", "MAX_RETRIES": "three", "LOG_FORMAT": "xml", "DEFAULT_SLIPPAGE": "0.9"}
    ).problems
    assert [p.split("=")[0] for p in problems] == ["PORT", "MAX_RETRIES", "LOG_FORMAT", "DEFAULT_SLIPPAGE"]
    assert "MAX_RETRIES=three is invalid: expected an integer" in problems
    assert "LOG_FORMAT=xml is invalid: must be one of console, json" in problems


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MAX_RETRIES"):
        load_settings({"MAX_RETRIES": "three"})
    with pytest.raises(SettingsError, match="MOCK_FAIL_RATE=2 is out of range: must be between 0 and 1"):
        load_settings({"MOCK_FAIL_RATE": "2"})
    with pytest.raises(SettingsError, match="MOCK_LAUNCHES names unknown tokens: NOPE"):
        load_settings({"MOCK_LAUNCHES": "NOPE=2026-01-01T00:00:00Z"})
    with pytest.raises(SettingsError, match=r"MOCK_EXPLORER_TX_URL must contain \{tx_hash\}"):
        load_settings({"MOCK_EXPLORER_TX_URL": "https://explorer.example/tx"})
    assert load_settings({"MOCK_EXPLORER_TX_URL": ""}).mock_explorer_tx_url == ""


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-Infinity", "1e400"])
def test_a_decimal_must_be_a_finite_number_in_range(raw: str) -> None:
    assert str(refusal({"MOCK_LATENCY_SCALE": raw})).startswith(f"MOCK_LATENCY_SCALE={raw} is ")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MOCK_QUOTE_MIN_MS": "500"}, "MOCK_QUOTE_MIN_MS=500 must not exceed MOCK_QUOTE_MAX_MS=400"),
        ({"MOCK_SWAP_MIN_MS": "3001"}, "MOCK_SWAP_MIN_MS=3001 must not exceed MOCK_SWAP_MAX_MS=3000"),
        ({"DEFAULT_SLIPPAGE": "0.6"}, "DEFAULT_SLIPPAGE=0.6 must not exceed MAX_SLIPPAGE=0.5"),
        ({"LIMIT_DEFAULT_TTL_S": "604801"}, "LIMIT_DEFAULT_TTL_S=604801 must not exceed LIMIT_MAX_TTL_S"),
        ({"MOCK_LATENCY_SCALE": "21"}, f"it must be at most {MAX_MOCK_DELAY_MS} ms"),
        ({"QUOTE_TIMEOUT_MS": "200"}, "QUOTE_TIMEOUT_MS=200 must exceed the fastest mock quote"),
        ({"WORKER_HEARTBEAT_TIMEOUT_MS": "5000"}, "WORKER_HEARTBEAT_TIMEOUT_MS=5000 must be at least twice"),
        ({"WS_PING_TIMEOUT_S": "0.01"}, "WS_PING_TIMEOUT_S=0.01 is out of range: must be 0 (off) or between"),
        ({"USE_REAL_DEVNET": "true"}, "USE_REAL_DEVNET=true needs WALLET_PRIVATE_KEY"),
        (
            {"USE_REAL_DEVNET": "true", "SOLANA_POOLS_FILE": "/nonexistent/pools.json"},
            "/nonexistent/pools.json does not exist",
        ),
        (
            {"SOLANA_PRIORITY_FEE_FLOOR": "10", "SOLANA_PRIORITY_FEE_CAP": "5"},
            "SOLANA_PRIORITY_FEE_FLOOR=10 must not exceed SOLANA_PRIORITY_FEE_CAP=5",
        ),
        ({"SOLANA_EXPLORER_TX_URL": "https://x/tx"}, "SOLANA_EXPLORER_TX_URL must contain {tx_hash}"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL=LOUD is invalid: must be one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_rules_across_settings_name_the_variables(env: dict[str, str], message: str) -> None:
    assert message in str(refusal(env))


def test_a_rule_is_not_checked_against_a_value_already_refused() -> None:
    assert refusal({"MOCK_QUOTE_MIN_MS": "x", "MOCK_QUOTE_MAX_MS": "0"}).problems == [
        "MOCK_QUOTE_MIN_MS=x is invalid: expected an integer"
    ]


def test_booleans_choices_and_empty_optionals_read_as_before() -> None:
    s = load_settings(
        {
            "WS_CLOSE_ON_TERMINAL": "off",
            "PROJECTION_AUTO_REBUILD": "YES",
            "LOG_LEVEL": "debug",
            "MOCK_SEED": "",
        }
    )
    assert (s.ws_close_on_terminal, s.projection_auto_rebuild, s.log_level, s.mock_seed) == (
        False,
        True,
        "DEBUG",
        None,
    )
    assert load_settings({"DATABASE_URL": "", "METRICS_DIR": ""}).database_url is None
    assert load_settings({"METRICS_DIR": "/tmp/m"}).metrics_path.as_posix() == "/tmp/m"
    assert "USE_REAL_DEVNET=maybe is invalid: expected true or false" in str(
        refusal({"USE_REAL_DEVNET": "maybe"})
    )


def test_scheduled_launches_are_parsed_with_their_timezone() -> None:
    s = load_settings({"MOCK_LAUNCHES": "LAUNCH=2026-11-24T20:00:00Z"})
    assert s.mock_launches == {"LAUNCH": datetime(2026, 11, 24, 20, 0, tzinfo=UTC)}
    assert "pair 1 ('LAUNCH=2026-11-24T20:00:00'): the value needs a timezone" in str(
        refusal({"MOCK_LAUNCHES": "LAUNCH=2026-11-24T20:00:00"})
    )


def test_the_wallet_key_never_appears_in_the_settings_text() -> None:
    s = load_settings({"WALLET_PRIVATE_KEY": "super-secret-key"})
    assert "super-secret-key" not in repr(s) and "super-secret-key" not in str(s)
    assert "wallet_private_key='***'" in repr(s)


def test_every_setting_is_listed_in_env_example() -> None:
    text = (REPO_ROOT / ".env.example").read_text()
    missing = [name for name in ENV_VARS if not re.search(rf"^#? ?{name}=", text, re.M)]
    assert missing == []


def comment_above(text: str, name: str) -> str:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if re.match(rf"^#? ?{name}=", line))
    block: list[str] = []
    for line in reversed(lines[:at]):
        if not line.startswith("#") or re.match(r"^# ?[A-Z_]+=", line):
            break
        block.insert(0, line.lstrip("# "))
    return " ".join(block)


@pytest.mark.parametrize("name", BOUNDED)
def test_env_example_gives_each_bounded_setting_its_declared_range(name: str) -> None:
    low, high, excluded = bounds(name)
    comment = comment_above((REPO_ROOT / ".env.example").read_text(), var(name))
    assert re.search(rf"Range: {low}\b.* to {'below ' if excluded else ''}{high}\b", comment), comment


def test_api_keys_map_keys_to_users_and_never_print_a_key() -> None:
    s = load_settings({"API_KEYS": "k-alice-0123456789abcdef:alice, k-bob-0123456789abcdef:bob"})
    assert s.api_keys == {"k-alice-0123456789abcdef": "alice", "k-bob-0123456789abcdef": "bob"}
    assert "k-alice" not in repr(s) and "alice" in repr(s)


def test_a_bad_api_key_pair_is_refused_without_echoing_the_key() -> None:
    with pytest.raises(SettingsError, match="API_KEYS") as caught:
        load_settings({"API_KEYS": "short-secret:alice"})
    assert "short-secret" not in str(caught.value) and "alice" not in str(caught.value)
    with pytest.raises(SettingsError, match="pair 1"):
        load_settings({"API_KEYS": "no-user-given-0123456789"})
    message = str(refusal({"API_KEYS": "k-ok-0123456789abcdef:alice,k-no-user-abcdef0123:"}))
    assert message == "API_KEYS is invalid: pair 2: expected KEY:VALUE"


def test_secrets_stay_out_of_errors_among_other_problems() -> None:
    message = str(refusal({"API_KEYS": "leaky-key:bob", "WALLET_PRIVATE_KEY": "wallet-secret", "PORT": "x"}))
    assert "leaky-key" not in message and "wallet-secret" not in message and "PORT=x" in message


def test_the_cli_prints_one_line_for_a_bad_configuration() -> None:
    env = {**os.environ, "ORDER_RATE_PER_MIN": "10000000", "PORT": "70000"}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "orderengine: configuration error: PORT=70000 is out of range: must be between 1 and 65535; "
        "ORDER_RATE_PER_MIN=10000000 is out of range: must be between 0 and 6000000"
    ]


# --- Properties -------------------------------------------------------------------------


def in_range(name: str) -> st.SearchStrategy[Any]:
    low, high, excluded = bounds(name)
    info = FIELDS[name].info
    if isinstance(info, mi.IntType):
        return st.integers(low, high)
    if isinstance(info, mi.FloatType):
        if name in PINGS:
            return st.just(0.0) | st.floats(0.1, high)
        return st.floats(low, high)
    return st.decimals(low, high, allow_nan=False, places=4).filter(lambda d: not excluded or d < high)


def out_of_range(name: str) -> st.SearchStrategy[Any]:
    low, high, excluded = bounds(name)
    info = FIELDS[name].info
    if isinstance(info, mi.IntType):
        return st.integers(max_value=low - 1) | st.integers(min_value=high + 1)
    if isinstance(info, mi.FloatType):
        below = st.floats(0, 0.1, exclude_min=True, exclude_max=True) if name in PINGS else st.nothing()
        return (
            below | st.floats(max_value=low, exclude_max=True) | st.floats(min_value=high, exclude_min=True)
        )
    above = st.decimals(min_value=high, allow_nan=False, allow_infinity=False, places=4)
    above = above if excluded else above.filter(lambda d: d > high)
    return (
        st.decimals(max_value=low, allow_nan=False, allow_infinity=False, places=4).filter(lambda d: d < low)
        | above
    )


@st.composite
def valid_environments(draw: st.DrawFn) -> dict[str, Any]:
    """Every bounded setting drawn within its range, together satisfying the rules across them."""
    values = {name: draw(in_range(name)) for name in BOUNDED}
    scale = values["mock_latency_scale"]
    longest = (
        MAX_MOCK_DELAY_MS if scale == 0 else min(MAX_MOCK_DELAY_MS, math.floor(MAX_MOCK_DELAY_MS / scale))
    )
    for kind in ("quote", "swap"):
        low, high = sorted(draw(st.integers(0, longest)) for _ in range(2))
        values[f"mock_{kind}_min_ms"], values[f"mock_{kind}_max_ms"] = low, high
    fastest = values["mock_quote_min_ms"] * scale
    if fastest >= 60_000:
        values["mock_quote_min_ms"], fastest = 0, Decimal(0)
    values["quote_timeout_ms"] = draw(st.integers(math.floor(fastest) + 1, 60_000))
    quiet = max(
        values["worker_idle_ms"], max(values["mock_quote_max_ms"], values["mock_swap_max_ms"]) * scale
    )
    values["worker_heartbeat_timeout_ms"] = draw(st.integers(max(1000, math.ceil(2 * quiet)), 3_600_000))
    for low_name, high_name in (
        ("default_slippage", "max_slippage"),
        ("limit_default_ttl_s", "limit_max_ttl_s"),
        ("solana_priority_fee_floor", "solana_priority_fee_cap"),
    ):
        values[low_name], values[high_name] = sorted((values[low_name], values[high_name]))
    return values


@given(valid_environments())
def test_any_values_within_their_ranges_load(values: dict[str, Any]) -> None:
    s = load_settings({var(name): str(value) for name, value in values.items()})
    assert {name: getattr(s, name) for name in values} == values


@given(st.sampled_from(BOUNDED).flatmap(lambda name: st.tuples(st.just(name), out_of_range(name))))
def test_any_value_out_of_its_range_is_refused_with_its_name(case: tuple[str, Any]) -> None:
    name, value = case
    problems = refusal({var(name): str(value)}).problems
    assert problems == [f"{var(name)}={value} is out of range: " + problems[0].split(": ", 1)[1]]


def test_the_settings_struct_converts_from_the_environment_names() -> None:
    # rename="upper": msgspec itself maps the variables onto the fields.
    converted = msgspec.convert({"PORT": "3100", "LOG_LEVEL": "WARNING"}, Settings, strict=False)
    assert (converted.port, converted.log_level) == (3100, "WARNING")


def test_a_wallet_key_that_is_not_a_key_is_refused_without_printing_it() -> None:
    secret = "not-a-key-but-secret-material-" + "x" * 40
    message = str(refusal({"USE_REAL_DEVNET": "true", "WALLET_PRIVATE_KEY": secret}))
    assert "WALLET_PRIVATE_KEY is neither a JSON byte array nor a base58 64-byte secret key" in message
    assert "secret-material" not in message


def test_a_pools_file_naming_an_unknown_token_is_refused_with_the_file_and_the_entry(tmp_path: Path) -> None:
    pools = tmp_path / "pools.json"
    pools.write_text(
        '{"cluster": "localnet", "tokens": {"DOGE": "So11111111111111111111111111111111111111112"}}'
    )
    key = "[" + ",".join(str(b) for b in bytes(Keypair())) + "]"
    message = str(
        refusal({"USE_REAL_DEVNET": "true", "WALLET_PRIVATE_KEY": key, "SOLANA_POOLS_FILE": str(pools)})
    )
    assert f"{pools}: token 'DOGE' is not one the engine trades" in message
    assert key not in message


def test_on_chain_settings_load_with_a_valid_wallet_and_pools_file(tmp_path: Path) -> None:
    pools = tmp_path / "pools.json"
    usdc = str(Keypair().pubkey())
    pool = str(Keypair().pubkey())
    pools.write_text(
        f'{{"cluster": "localnet", "tokens": {{"USDC": "{usdc}"}}, '
        f'"pools": [{{"pair": "SOL/USDC", "venue": "raydium", "address": "{pool}"}}]}}'
    )
    keypair = Keypair()
    s = load_settings(
        {"USE_REAL_DEVNET": "true", "WALLET_PRIVATE_KEY": str(keypair), "SOLANA_POOLS_FILE": str(pools)}
    )
    assert s.use_real_devnet and s.pools_path == pools
    assert str(keypair) not in repr(s)


def test_the_settings_never_print_a_password_in_a_url() -> None:
    s = load_settings(
        {
            "DATABASE_URL": "postgresql://app:hunter22@db.internal:5432/oe",
            "REDIS_URL": "redis://:s3cr3tpass@cache.internal:6379/0",
        }
    )
    shown = repr(s)
    assert "hunter22" not in shown and "s3cr3tpass" not in shown
    assert "db.internal:5432/oe" in shown and "cache.internal:6379/0" in shown

"""Settings: read once from the environment, checked, secrets masked, documented."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.settings import _ENV, REPO_ROOT, SettingsError, load_settings


def test_defaults_follow_the_brief() -> None:
    s = load_settings({})
    assert (s.queue_max_concurrent, s.order_processor_rate, s.max_retries, s.backoff_base_ms) == (
        10,
        100,
        3,
        500,
    )
    assert s.use_real_devnet is False and s.mock_latency_scale == Decimal(1)


def test_bull_concurrency_is_the_brief_name_for_the_in_flight_limit() -> None:
    assert load_settings({"BULL_CONCURRENCY": "4"}).queue_max_concurrent == 4


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MAX_RETRIES"):
        load_settings({"MAX_RETRIES": "three"})
    with pytest.raises(SettingsError, match="MOCK_FAIL_RATE"):
        load_settings({"MOCK_FAIL_RATE": "2"})
    with pytest.raises(SettingsError, match="MOCK_LAUNCHES"):
        load_settings({"MOCK_LAUNCHES": "NOPE=2026-01-01T00:00:00Z"})
    with pytest.raises(SettingsError, match=r"MOCK_EXPLORER_TX_URL must contain \{tx_hash\}"):
        load_settings({"MOCK_EXPLORER_TX_URL": "https://explorer.example/tx"})
    assert load_settings({"MOCK_EXPLORER_TX_URL": ""}).mock_explorer_tx_url == ""


def test_scheduled_launches_are_parsed_with_their_timezone() -> None:
    s = load_settings({"MOCK_LAUNCHES": "LAUNCH=2026-11-24T20:00:00Z"})
    assert s.mock_launches == {"LAUNCH": datetime(2026, 11, 24, 20, 0, tzinfo=UTC)}


def test_the_wallet_key_never_appears_in_the_settings_text() -> None:
    s = load_settings({"WALLET_PRIVATE_KEY": "super-secret-key"})
    assert "super-secret-key" not in repr(s) and "super-secret-key" not in str(s)


def test_every_setting_is_listed_in_env_example() -> None:
    text = (REPO_ROOT / ".env.example").read_text()
    missing = [name for name in _ENV if not re.search(rf"^#? ?{name}=", text, re.M)]
    assert missing == []


def test_api_keys_map_keys_to_users_and_never_print_a_key() -> None:
    s = load_settings({"API_KEYS": "k-alice-0123456789abcdef:alice, k-bob-0123456789abcdef:bob"})
    assert s.api_keys == {"k-alice-0123456789abcdef": "alice", "k-bob-0123456789abcdef": "bob"}
    assert "k-alice" not in repr(s) and "alice" in repr(s)


def test_a_bad_api_key_pair_is_refused_without_echoing_the_key() -> None:
    with pytest.raises(SettingsError, match="API_KEYS") as caught:
        load_settings({"API_KEYS": "short-secret:alice"})
    assert "short-secret" not in str(caught.value)
    with pytest.raises(SettingsError, match="pair 1"):
        load_settings({"API_KEYS": "no-user-given-0123456789"})

"""Operator keys (api/auth.py, OPERATOR_KEYS): an operator's key names no user and may see
every order; a user's key names its user; with no keys at all the API is open, and the
open API may do what an operator may."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.testing import TestClient

from adapters.settings import SettingsError, load_settings
from api.auth import AuthMiddleware, Caller, KeyRing, caller_of, cancelled_by, role_of, sees_every_order

USER_KEY = "user-key-0123456789abcdef"
OPERATOR_KEY = "operator-key-0123456789abcdef"


@get("/who")
async def who(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {
        "user": caller_of(request),
        "role": role_of(request),
        "all": sees_every_order(request),
        "by": cancelled_by(request),
    }


def ask(ring: KeyRing, key: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with TestClient(Litestar([who], middleware=[AuthMiddleware(ring)])) as client:
        answer = client.get("/who", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_an_operator_key_names_no_user_and_the_operator_role() -> None:
    ring = KeyRing({USER_KEY: "alice"}, [OPERATOR_KEY])
    assert ring.caller_for(f"Bearer {OPERATOR_KEY}") == Caller(user=None, role="operator")
    assert ring.caller_for(f"Bearer {USER_KEY}") == Caller(user="alice", role="user")
    assert ring.caller_for("Bearer not-a-known-key-0123456789") is None


def test_operator_keys_alone_turn_authentication_on() -> None:
    ring = KeyRing({}, [OPERATOR_KEY])
    assert ring
    with TestClient(Litestar([who], middleware=[AuthMiddleware(ring)])) as client:
        assert client.get("/who").status_code == 401


def test_an_operator_sees_every_order_and_cancels_as_the_operator() -> None:
    seen = ask(KeyRing({USER_KEY: "alice"}, [OPERATOR_KEY]), OPERATOR_KEY)
    assert seen == {"user": None, "role": "operator", "all": True, "by": "operator"}


def test_a_user_key_sees_only_its_user() -> None:
    seen = ask(KeyRing({USER_KEY: "alice"}, [OPERATOR_KEY]), USER_KEY)
    assert seen == {"user": "alice", "role": "user", "all": False, "by": "alice"}


def test_an_open_api_may_do_what_an_operator_may() -> None:
    seen = ask(KeyRing({}), None)
    assert seen == {"user": None, "role": "open", "all": True, "by": "user"}


def test_operator_keys_are_read_as_a_comma_separated_set_and_never_printed() -> None:
    s = load_settings({"OPERATOR_KEYS": f" {OPERATOR_KEY}, op-two-0123456789abcdef ,"})
    assert s.operator_keys == frozenset({OPERATOR_KEY, "op-two-0123456789abcdef"})
    assert OPERATOR_KEY not in repr(s) and "operator_keys=<2 keys>" in repr(s)
    assert load_settings({}).operator_keys == frozenset()


def test_a_short_operator_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError, match="OPERATOR_KEYS is invalid: item 2") as caught:
        load_settings({"OPERATOR_KEYS": f"{OPERATOR_KEY},too-short"})
    assert "too-short" not in str(caught.value) and OPERATOR_KEY not in str(caught.value)


def test_a_key_cannot_be_both_a_users_and_an_operators() -> None:
    with pytest.raises(SettingsError, match="share 1 key") as caught:
        load_settings({"API_KEYS": f"{USER_KEY}:alice", "OPERATOR_KEYS": f"{USER_KEY},{OPERATOR_KEY}"})
    assert USER_KEY not in str(caught.value)

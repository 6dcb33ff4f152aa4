"""Structured logs: one JSON object per line, with the order's facts as fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.engine import Engine

pytestmark = pytest.mark.e2e


def json_lines(engine: Engine) -> list[dict[str, Any]]:
    lines = engine.log_path.read_text(errors="replace").splitlines()
    parsed = []
    for line in lines:
        if line.startswith("{"):
            parsed.append(json.loads(line))  # a line that starts as JSON must be whole JSON
    return parsed


def test_an_orders_log_lines_carry_its_steps_dex_quotes_retries_and_tx_hash(
    start_engine: Callable[..., Engine],
) -> None:
    engine = start_engine(MOCK_FAIL_FIRST_N="1", LOG_FORMAT="json")
    order_id = engine.submit(userId="logged-user")
    engine.wait_for_status(order_id, {"confirmed"})
    mine = [line for line in json_lines(engine) if line.get("orderId") == order_id]
    by_msg = {line["msg"]: line for line in mine}
    assert by_msg["order accepted"]["userId"] == "logged-user"
    routed = by_msg["routed"]
    assert routed["dex"] in {"raydium", "meteora"} and set(routed["quotes"]) == {"raydium", "meteora"}
    retry = by_msg["step failed, retrying"]
    assert retry["step"] == "submit" and retry["attempt"] == 1 and retry["error"]
    assert by_msg["submitted"]["txHash"]
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in mine)

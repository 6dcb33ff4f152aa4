"""The operator's CLI against a real engine's database: replay, audit, events tail."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import psycopg
import pytest

from projections import orders_projection
from tests.e2e.engine import REPO, Engine
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def cli(engine: Engine, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        env={**engine.env, "LOG_FORMAT": "console"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def confirmed_order(engine: Engine) -> tuple[str, list[dict[str, object]]]:
    order_id = engine.submit()
    engine.wait_for_status(order_id, {"confirmed"})
    events = httpx.get(f"{engine.base_url}/api/orders/{order_id}/events", timeout=10).json()["events"]
    return order_id, events


def test_replay_shows_the_timeline_and_the_state_at_a_version_or_instant(engine: Engine) -> None:
    order_id, events = confirmed_order(engine)
    whole = cli(engine, "replay", order_id, "--json")
    assert whole.returncode == 0, whole.stderr
    body = json.loads(whole.stdout)
    assert [e["version"] for e in body["events"]] == [e["version"] for e in events]
    assert body["state"]["status"] == "confirmed" and body["state"]["tx_hash"]

    routing = next(e for e in events if e["type"] == "OrderRouting")
    cut = json.loads(
        cli(engine, "replay", order_id, "--to-version", str(routing["version"]), "--json").stdout
    )
    assert cut["state"]["status"] == "routing" and cut["state"]["tx_hash"] is None

    # Just after routing was recorded, before building: the state then, not now.
    building = next(e for e in events if e["type"] == "OrderBuilding")
    routed_at = datetime.fromisoformat(str(routing["recordedAt"]))
    built_at = datetime.fromisoformat(str(building["recordedAt"]))
    between = routed_at + (built_at - routed_at) / 2
    as_of = json.loads(cli(engine, "replay", order_id, "--as-of", between.isoformat(), "--json").stdout)
    assert as_of["state"]["status"] == "routing" and len(as_of["events"]) == routing["version"]
    before = json.loads(
        cli(
            engine, "replay", order_id, "--as-of", (routed_at - timedelta(days=1)).isoformat(), "--json"
        ).stdout
    )
    assert before["events"] == [] and before["state"]["status"] == "new"

    text = cli(engine, "replay", order_id)
    assert text.returncode == 0 and "OrderConfirmed" in text.stdout and "state: " in text.stdout


def test_replay_exit_codes_and_messages_for_mistakes(engine: Engine) -> None:
    unknown = cli(engine, "replay", str(uuid.uuid4()))
    assert unknown.returncode == 3 and "no order" in unknown.stderr and "Traceback" not in unknown.stderr
    bad_id = cli(engine, "replay", "not-an-id")
    assert bad_id.returncode == 2 and "not an order id" in bad_id.stderr
    order_id, _ = confirmed_order(engine)
    naive = cli(engine, "replay", order_id, "--as-of", "2026-11-24T12:00:00")
    assert naive.returncode == 2 and "timezone" in naive.stderr
    both = cli(engine, "replay", order_id, "--as-of", "2026-11-24T12:00:00Z", "--to-version", "2")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_events_tail_prints_the_log_from_a_position(engine: Engine) -> None:
    order_id, events = confirmed_order(engine)
    start = int(str(events[0]["position"])) - 1
    tail = cli(
        engine, "events", "tail", "--order", order_id, "--from-position", str(start), "--count", "3", "--json"
    )
    assert tail.returncode == 0, tail.stderr
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [line["version"] for line in lines] == [1, 2, 3] and {line["streamId"] for line in lines} == {
        order_id
    }


def test_audit_passes_on_a_consistent_engine_then_finds_an_edited_row_and_a_tampered_event(
    start_engine: Callable[..., Engine], own_database_url: str
) -> None:
    audited = start_engine(database=own_database_url)
    order_ids = [confirmed_order(audited)[0] for _ in range(3)]
    clean = cli(audited, "audit", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert (
        report["divergences"] == [] and report["streams"] >= 3 and report["hashedEvents"] == report["events"]
    )

    edited, tampered = order_ids[0], order_ids[1]
    with psycopg.connect(own_database_url, autocommit=True) as conn:
        conn.execute("UPDATE orders SET tx_hash = 'forged' WHERE id = %s", (edited,))
        conn.execute(
            "UPDATE events SET data = jsonb_set(data, '{amount}', '\"999\"')"
            " WHERE stream_id = %s AND version = 1",
            (tampered,),
        )
    found = cli(audited, "audit", "--json")
    assert found.returncode == 1
    divergences = json.loads(found.stdout)["divergences"]
    row = [d for d in divergences if d["orderId"] == edited]
    assert row == [
        {
            "kind": "field",
            "orderId": edited,
            "detail": "tx_hash differs",
            "field": "tx_hash",
            "logValue": row[0]["logValue"],
            "readModelValue": "forged",
            "version": None,
        }
    ] and row[0]["logValue"] not in (None, "forged")
    broken = [d for d in divergences if d["orderId"] == tampered and d["kind"] == "hash_mismatch"]
    assert [d["version"] for d in broken] == [1]  # the edited event, and only it
    text = cli(audited, "audit")
    assert text.returncode == 1 and "DIVERGENCE hash_mismatch" in text.stdout and "forged" in text.stdout


def test_the_scheduler_rebuilds_a_projection_that_older_code_built(
    start_engine: Callable[..., Engine], own_database_url: str
) -> None:
    # The orders read model as a deployment of version 1 of the projection left it.
    with psycopg.connect(own_database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO projection_checkpoints (name, position, version) VALUES ('orders', 0, 1)")
    engine = start_engine(database=own_database_url)

    def versions() -> dict[str, object] | None:
        shown = cli(engine, "projections", "status", "--json")
        assert shown.returncode == 0, shown.stderr
        statuses = {f["name"]: f for f in json.loads(shown.stdout)}
        return statuses if not statuses["orders"]["outdated"] else None

    statuses = wait_until(versions, timeout=60, interval=0.5, what="the orders projection rebuilt")
    assert statuses["orders"]["version"] == statuses["orders"]["codeVersion"] == orders_projection.VERSION
    assert "outdated projections rebuilt" in engine.log_path.read_text()
    order_id, _ = confirmed_order(engine)  # the rebuilt table serves and follows on
    audited = cli(engine, "audit", "--json")
    assert audited.returncode == 0 and json.loads(audited.stdout)["outdated"] == [], audited.stdout
    assert httpx.get(f"{engine.base_url}/api/orders/{order_id}", timeout=10).json()["status"] == "confirmed"

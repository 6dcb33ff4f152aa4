"""`orderengine projections status|rebuild` against a real Postgres: outputs, exit codes, and
one-line errors for a user's mistakes."""

from __future__ import annotations

import argparse
import io
import json

import psycopg
import pytest

from adapters.settings import Settings
from api import operator_cli, projection_commands
from projections import orders_projection
from tests.benchmarks.simulated_log import simulate_log, write_log

pytestmark = pytest.mark.integration


def run(database_url: str | None, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="orderengine")
    commands = parser.add_subparsers(dest="command", required=True)
    projection_commands.register(commands)
    operator_cli.register(commands)
    args = parser.parse_args(argv)
    return projection_commands.run(Settings(database_url=database_url), args)


def test_status_as_json_and_as_a_table(own_database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(own_database_url, simulate_log(seed=1, min_events=50))
    assert run(own_database_url, "projections", "status", "--json") == 0
    followers = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in followers] == ["orders", "stats", "redis_relay"]
    assert followers[0]["lagEvents"] == followers[0]["head"] >= 50
    assert run(own_database_url, "projections", "status") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "VERSION", "POSITION", "HEAD", "LAG", "EVENTS", "LAG", "S", "STATE"]
    code = orders_projection.VERSION
    assert table[1].split()[:2] == ["orders", str(code)] and table[1].endswith("behind")
    assert table[3].split()[:2] == ["redis_relay", "-"]

    with psycopg.connect(own_database_url, autocommit=True) as conn:  # built by version 1 of its code
        conn.execute("INSERT INTO projection_checkpoints (name, position, version) VALUES ('orders', 0, 1)")
    assert run(own_database_url, "projections", "status", "--json") == 0
    orders = json.loads(capsys.readouterr().out)[0]
    assert (orders["version"], orders["codeVersion"], orders["outdated"]) == (1, code, True)
    assert run(own_database_url, "projections", "status") == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(f"behind, outdated: the code is version {code}")


def test_rebuild_prints_plain_progress_lines_off_a_terminal_and_a_summary(
    own_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(own_database_url, simulate_log(seed=2, min_events=200))
    assert run(own_database_url, "projections", "rebuild", "stats") == 0
    out, err = capsys.readouterr()
    assert out.startswith("rebuilt stats: ") and "events/s" in out and "swapped in at position" in out
    assert "\r" not in err and err.strip().splitlines()[-1].startswith("stats: 100%")
    assert run(own_database_url, "projections", "rebuild", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in report["projections"]] == ["orders", "stats"] and report["events"] >= 200


def test_rebuild_with_scan_workers_builds_the_same_tables(
    own_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(own_database_url, simulate_log(seed=3, min_events=300))
    assert run(own_database_url, "projections", "rebuild", "--workers", "1") == 0
    assert "1 scan process)" in capsys.readouterr().out
    one = _read_models(own_database_url)
    assert run(own_database_url, "projections", "rebuild", "--workers", "2", "--json") == 0
    assert json.loads(capsys.readouterr().out)["workers"] == 2
    assert _read_models(own_database_url) == one and len(one["orders"]) > 10


def _read_models(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4").fetchall()
            for table in ("orders", "stats_orders", "stats_user_pairs", "stats_pairs")
        }


def test_workers_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("0", "two"):
        with pytest.raises(SystemExit) as exit_:
            run(None, "projections", "rebuild", "--workers", value)
        assert exit_.value.code == 2
        assert "argument --workers: " in capsys.readouterr().err


def test_an_unknown_projection_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(None, "projections", "rebuild", "nope")
    assert exit_.value.code == 2
    assert "invalid choice: 'nope' (choose from 'orders', 'stats')" in capsys.readouterr().err


def test_an_unreachable_database_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    order = "0b3c2f4e-3f9a-4f7e-9d55-1c6f0c0f0a11"
    for command in (["projections", "status"], ["projections", "rebuild"], ["audit"], ["replay", order]):
        assert run("postgresql://postgres@127.0.0.1:1/none", *command) == 1
        err = capsys.readouterr().err
        assert err.startswith("orderengine: cannot reach the database: ") and err.count("\n") == 1
        assert "Traceback" not in err


def test_the_progress_bar_on_a_terminal_rewrites_one_line() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = projection_commands.ProgressBar("orders", out)
    bar.update(500, 1000)
    bar.update(1000, 1000)
    bar.close()
    text = out.getvalue()
    assert text.startswith("\rorders ") and text.count("\r") == 2 and text.endswith("\n")
    assert "1,000/1,000 events" in text and "events/s" in text and "left" in text and "100%" in text

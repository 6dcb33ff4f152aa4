"""The supervisor does not restart a process that could not start for a reason a restart
cannot mend (its configuration, or a server unreachable while the engine is starting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.preflight import EXIT_CONFIGURATION, EXIT_UNREACHABLE
from adapters.settings import load_settings
from api import supervisor


class FakeChild:
    """A child process whose poll() answers from a list (the last answer repeats)."""

    pid = 2**22 + 1  # no such process: mark_process_dead only removes its files, if any

    def __init__(self, *polls: int | None) -> None:
        self.polls = list(polls)

    def poll(self) -> int | None:
        return self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]


def supervise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, child: FakeChild, *, healthy: bool
) -> tuple[int, list[str]]:
    """Runs _supervise over one child; a restart is recorded and ends the run (as a stop would)."""
    stop = supervisor._StopRequest()
    spawned: list[str] = []

    def spawn(name: str, env: dict[str, str]) -> FakeChild:
        spawned.append(name)
        stop.count = 1
        return FakeChild(None)

    monkeypatch.setattr(supervisor, "_spawn", spawn)
    monkeypatch.setattr(supervisor, "_healthy", lambda url: healthy)
    monkeypatch.setattr(supervisor, "_POLL_S", 0.01)
    env = {supervisor.MULTIPROC_ENV: str(tmp_path)}
    code = supervisor._supervise(load_settings({}), {"scheduler": child}, stop, env)  # type: ignore[dict-item]
    return code, spawned


def test_a_child_refusing_its_configuration_stops_the_engine_with_its_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, spawned = supervise(monkeypatch, tmp_path, FakeChild(None, EXIT_CONFIGURATION), healthy=True)
    assert (code, spawned) == (EXIT_CONFIGURATION, [])


def test_a_child_that_cannot_reach_a_server_at_start_up_is_not_restarted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, spawned = supervise(monkeypatch, tmp_path, FakeChild(EXIT_UNREACHABLE), healthy=False)
    assert (code, spawned) == (EXIT_UNREACHABLE, [])


def test_once_the_engine_was_ready_an_unreachable_server_is_an_outage_and_the_child_restarts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, spawned = supervise(monkeypatch, tmp_path, FakeChild(None, EXIT_UNREACHABLE), healthy=True)
    assert (code, spawned) == (0, ["scheduler"])


def test_a_child_that_crashes_is_still_restarted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, spawned = supervise(monkeypatch, tmp_path, FakeChild(1), healthy=False)
    assert (code, spawned) == (0, ["scheduler"])

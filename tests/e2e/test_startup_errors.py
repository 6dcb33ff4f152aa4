"""Start-up against a Postgres or Redis that cannot be used: one `orderengine:` line naming
it (its URL masked, the reason), a distinct exit code, no traceback, no password, and no
process started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from psycopg.conninfo import make_conninfo

from adapters.preflight import EXIT_UNREACHABLE
from tests.e2e.engine import REPO, free_port

pytestmark = pytest.mark.e2e

PASSWORD = "pw-e2e-7f3kq9"  # never to appear in any output


def orderengine(
    *args: str, timeout: float = 60, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        env={**os.environ, "PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, time.monotonic() - started


def the_one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single `orderengine:` line on stderr, after checking nothing else went wrong."""
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert PASSWORD not in output, output
    lines = [line for line in done.stderr.splitlines() if line.startswith("orderengine:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def not_redis() -> Iterator[int]:
    """A port on 127.0.0.1 where an HTTP-ish server answers anything with a 400."""
    listener = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()
    for conn in conns:
        conn.close()


def test_run_with_postgres_on_a_closed_port_says_so_in_one_line(redis_url: str) -> None:
    port = free_port()  # nothing listens there
    done, seconds = orderengine(
        "run", DATABASE_URL=f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/oe", REDIS_URL=redis_url
    )
    assert done.returncode == EXIT_UNREACHABLE and seconds < 10
    assert the_one_line(done) == (
        f"orderengine: cannot reach Postgres at postgresql://postgres:***@127.0.0.1:{port}/oe: "
        "connection refused"
    )
    assert done.stdout == ""  # no embedded servers, no migrations, no process started


def test_run_with_redis_on_a_closed_port_says_so_in_one_line(database_url: str) -> None:
    port = free_port()
    done, seconds = orderengine(
        "run", DATABASE_URL=database_url, REDIS_URL=f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    )
    assert done.returncode == EXIT_UNREACHABLE and seconds < 10
    assert the_one_line(done) == (
        f"orderengine: cannot reach Redis at redis://:***@127.0.0.1:{port}/0: connection refused"
    )
    assert done.stdout == ""  # the API never started while a scheduler crash-looped


def test_run_with_a_redis_url_on_a_server_that_is_not_redis_says_so(
    database_url: str, not_redis: int
) -> None:
    done, seconds = orderengine(
        "run", DATABASE_URL=database_url, REDIS_URL=f"redis://default:{PASSWORD}@127.0.0.1:{not_redis}/0"
    )
    assert done.returncode == EXIT_UNREACHABLE and seconds < 10
    line = the_one_line(done)
    assert line.startswith(f"orderengine: cannot use Redis at redis://default:***@127.0.0.1:{not_redis}/0: ")
    assert "not a Redis server" in line


def test_a_worker_on_its_own_with_a_bad_redis_url_waits_briefly_then_says_so(database_url: str) -> None:
    port = free_port()
    done, seconds = orderengine(
        "worker", DATABASE_URL=database_url, REDIS_URL=f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    )
    assert done.returncode == EXIT_UNREACHABLE
    assert the_one_line(done) == (
        f"orderengine: cannot reach Redis at redis://:***@127.0.0.1:{port}/0: "
        "connection refused (waited 10 s)"
    )
    assert seconds < 25  # START_WAIT_S, then it gives up


def test_a_scheduler_on_its_own_with_an_unknown_database_says_so_at_once(
    database_url: str, redis_url: str
) -> None:
    unknown = make_conninfo(database_url, dbname="oe_no_such_database")  # the same server
    done, seconds = orderengine("scheduler", DATABASE_URL=unknown, REDIS_URL=redis_url)
    assert done.returncode == EXIT_UNREACHABLE and seconds < 10  # a refusal is not waited for
    line = the_one_line(done)
    assert line.startswith("orderengine: cannot use Postgres at ")
    assert line.endswith('database "oe_no_such_database" does not exist')

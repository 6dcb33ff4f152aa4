"""Start-up checks (adapters/preflight.py): URLs masked, failures named in a phrase, waiting bounded.

The network ones talk only to 127.0.0.1: a closed port, and tiny TCP servers of their own
that answer like no Redis or Postgres would.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import redis

from adapters.preflight import (
    POSTGRES,
    REDIS,
    RETRY_INTERVAL_S,
    Problem,
    ServerProblem,
    ServersUnreachable,
    check_servers,
    mask_url,
    postgres_problem,
    probe_postgres,
    probe_redis,
    redis_problem,
)

# --- Masking ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://postgres:hunter2@127.0.0.1:5999/oe", "postgresql://postgres:***@127.0.0.1:5999/oe"),
        ("postgresql://postgres@127.0.0.1:5432/oe", "postgresql://postgres@127.0.0.1:5432/oe"),
        ("postgres://u:p%40ss@h1:5432,h2:5433/db", "postgres://u:***@h1:5432,h2:5433/db"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://default:s3cret@redis:6379/0", "redis://default:***@redis:6379/0"),
        ("rediss://s3cret@redis:6380", "rediss://***@redis:6380"),
        ("redis://redis:6379/0?password=s3cret&db=1", "redis://redis:6379/0?password=***&db=1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (
            "host=127.0.0.1 user=postgres password=hunter2 dbname=oe",
            "host=127.0.0.1 user=postgres password=*** dbname=oe",
        ),
        ("host=h password = 'a b\\'c' dbname=oe", "host=h password = *** dbname=oe"),
        ("postgresql:///oe?host=/run/postgresql", "postgresql:///oe?host=/run/postgresql"),
    ],
)
def test_mask_url_hides_the_password_and_keeps_the_rest(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize("password", ["p@ss/w?rd#1", "a:b@c", "x/y"])
def test_a_password_with_url_delimiters_unencoded_is_masked_whole(password: str) -> None:
    masked = mask_url(f"postgresql://postgres:{password}@127.0.0.1:5432/oe")
    assert masked == "postgresql://postgres:***@127.0.0.1:5432/oe"


# --- Reasons from real failures on 127.0.0.1 -----------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tcp_server() -> Iterator[Callable[[bytes | None], int]]:
    """Starts servers on 127.0.0.1 that answer every connection with `reply` (None: silence)."""
    sockets: list[socket.socket] = []

    def start(reply: bytes | None) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                sockets.append(conn)
                if reply is not None:
                    conn.recv(1024)
                    conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for s in sockets:
        s.close()


def test_postgres_on_a_closed_port_is_refused_and_worth_waiting_for() -> None:
    assert probe_postgres(f"postgresql://postgres:pw@127.0.0.1:{closed_port()}/oe", 2) == Problem(
        "connection refused", transient=True
    )


def test_redis_on_a_closed_port_is_refused_and_worth_waiting_for() -> None:
    assert probe_redis(f"redis://:pw@127.0.0.1:{closed_port()}/0", 1) == Problem(
        "connection refused", transient=True
    )


def test_redis_url_on_an_http_server_is_not_redis(tcp_server: Callable[[bytes | None], int]) -> None:
    port = tcp_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    problem = probe_redis(f"redis://127.0.0.1:{port}/0", 1)
    assert problem is not None and not problem.transient
    assert problem.reason.startswith("not a Redis server")


def test_redis_url_on_a_server_that_hangs_up_is_not_redis(tcp_server: Callable[[bytes | None], int]) -> None:
    port = tcp_server(b"")  # reads the PING, answers nothing and...
    problem = probe_redis(f"redis://127.0.0.1:{port}/0", 1)
    assert problem is not None
    # ...keeps the socket open (the fixture closes it at the end): no answer.
    assert problem == Problem("no answer within 1 s", transient=True)


def test_redis_url_on_a_silent_server_times_out(tcp_server: Callable[[bytes | None], int]) -> None:
    port = tcp_server(None)
    assert probe_redis(f"redis://127.0.0.1:{port}/0", 0.3) == Problem("no answer within 0.3 s", True)


def test_database_url_on_an_http_server_is_not_postgres(tcp_server: Callable[[bytes | None], int]) -> None:
    port = tcp_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    problem = probe_postgres(f"postgresql://postgres@127.0.0.1:{port}/oe", 2)
    assert problem is not None and not problem.transient
    assert problem.reason.startswith("not a Postgres server?")


def test_a_redis_url_with_another_scheme_is_refused_at_once() -> None:
    assert probe_redis("http://127.0.0.1:6379/0", 1) == Problem(
        "not a Redis URL (it must start with redis://, rediss:// or unix://)", False
    )


def test_a_malformed_database_url_is_refused_without_echoing_it() -> None:
    problem = probe_postgres("host=127.0.0.1 hunter2", 2)
    assert problem is not None and not problem.transient
    assert problem.reason.startswith("not a valid connection URL") and "hunter2" not in problem.reason


# --- Reasons from the servers' messages ----------------------------------------------

_AT = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '


@pytest.mark.parametrize(
    ("message", "reason", "transient"),
    [
        (_AT + "Connection refused\n\tIs the server running on that host?", "connection refused", True),
        (
            _AT + 'FATAL:  password authentication failed for user "postgres"',
            'password authentication failed for user "postgres"',
            False,
        ),
        (_AT + 'FATAL:  database "oe" does not exist', 'database "oe" does not exist', False),
        (_AT + 'FATAL:  role "nobody" does not exist', 'role "nobody" does not exist', False),
        (_AT + "FATAL:  the database system is starting up", "the database system is starting up", True),
        (
            "failed to resolve host 'nohost.invalid': [Errno -2] Name or service not known",
            "cannot resolve host nohost.invalid (name or service not known)",
            True,
        ),
        (
            _AT + "received invalid response to SSL negotiation: H",
            "not a Postgres server? (received invalid response to SSL negotiation: H)",
            False,
        ),
    ],
)
def test_postgres_failures_read_as_a_phrase(message: str, reason: str, transient: bool) -> None:
    assert postgres_problem(psycopg.OperationalError(message)) == Problem(reason, transient)


def test_a_postgres_timeout_says_how_long_it_waited() -> None:
    assert postgres_problem(psycopg.errors.ConnectionTimeout("connection timeout expired"), 3) == Problem(
        "no answer within 3 s", True
    )


@pytest.mark.parametrize(
    ("exc", "reason", "transient"),
    [
        (
            redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6999. Connection refused."),
            "connection refused",
            True,
        ),
        (
            redis.exceptions.ConnectionError(
                "Error -2 connecting to nohost.invalid:6379. Name or service not known."
            ),
            "cannot resolve host nohost.invalid (name or service not known)",
            True,
        ),
        (
            redis.exceptions.ConnectionError(
                "Error -3 connecting to redis:6379. Temporary failure in name resolution."
            ),
            "cannot resolve host redis (temporary failure in name resolution)",
            True,
        ),
        (
            redis.exceptions.AuthenticationError("invalid username-password pair or user is disabled."),
            "authentication failed (invalid username-password pair or user is disabled.)",
            False,
        ),
        (
            redis.exceptions.ResponseError("WRONGPASS invalid username-password pair or user is disabled."),
            "authentication failed (WRONGPASS invalid username-password pair or user is disabled.)",
            False,
        ),
        (
            redis.exceptions.AuthenticationError("Authentication required."),
            "authentication failed (Authentication required.)",
            False,
        ),
        (redis.exceptions.ResponseError("DB index is out of range"), "DB index is out of range", False),
        (
            redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
            "the server is loading its data set",
            True,
        ),
        (
            redis.exceptions.ConnectionError("Connection closed by server."),
            "the server closed the connection: not a Redis server?",
            False,
        ),
        (redis.exceptions.TimeoutError("Timeout connecting to server"), "no answer within 3 s", True),
    ],
)
def test_redis_failures_read_as_a_phrase(exc: Exception, reason: str, transient: bool) -> None:
    assert redis_problem(exc, 3) == Problem(reason, transient)


# --- The check: one line, bounded waiting ---------------------------------------------


class FakeServers:
    """Probes answering from lists, one answer per call (the last repeats), on a fake clock."""

    def __init__(self, postgres: list[Problem | None], redis_: list[Problem | None]) -> None:
        self.answers = {POSTGRES: postgres, REDIS: redis_}
        self.calls = {POSTGRES: 0, REDIS: 0}
        self.now = 0.0

    def probe(self, service: str) -> Callable[[str, float], Problem | None]:
        def answer(url: str, timeout_s: float) -> Problem | None:
            self.calls[service] += 1
            answers = self.answers[service]
            return answers[min(self.calls[service], len(answers)) - 1]

        return answer

    def check(self, **kwargs: Any) -> list[ServerProblem]:
        def sleep(seconds: float) -> None:
            self.now += seconds

        probes = {POSTGRES: self.probe(POSTGRES), REDIS: self.probe(REDIS)}
        return check_servers(probes=probes, clock=lambda: self.now, sleep=sleep, **kwargs)


REFUSED = Problem("connection refused", True)
BAD_PASSWORD = Problem('password authentication failed for user "postgres"', False)
PG = "postgresql://postgres:hunter2@127.0.0.1:5999/oe"
RD = "redis://:s3cret@127.0.0.1:6999/0"


def test_a_server_not_up_yet_is_waited_for_until_it_answers() -> None:
    servers = FakeServers([REFUSED, REFUSED, None], [None])
    assert servers.check(database_url=PG, redis_url=RD, wait_s=10) == []
    assert servers.calls == {POSTGRES: 3, REDIS: 1}


def test_waiting_is_bounded_and_the_line_says_how_long() -> None:
    servers = FakeServers([REFUSED], [None])
    with pytest.raises(ServersUnreachable) as caught:
        servers.check(database_url=PG, redis_url=RD, wait_s=10)
    assert servers.now <= 10
    assert servers.calls[POSTGRES] == 1 + int(10 / RETRY_INTERVAL_S)
    assert str(caught.value) == (
        "cannot reach Postgres at postgresql://postgres:***@127.0.0.1:5999/oe: "
        "connection refused (waited 10 s)"
    )


def test_without_a_wait_one_attempt_decides() -> None:
    servers = FakeServers([None], [REFUSED])
    with pytest.raises(ServersUnreachable) as caught:
        servers.check(database_url=PG, redis_url=RD)
    assert str(caught.value) == "cannot reach Redis at redis://:***@127.0.0.1:6999/0: connection refused"
    assert servers.calls == {POSTGRES: 1, REDIS: 1}


def test_a_refusal_is_not_waited_for() -> None:
    servers = FakeServers([BAD_PASSWORD], [None])
    with pytest.raises(ServersUnreachable) as caught:
        servers.check(database_url=PG, redis_url=RD, wait_s=10)
    assert servers.calls[POSTGRES] == 1 and servers.now == 0
    assert str(caught.value) == (
        "cannot use Postgres at postgresql://postgres:***@127.0.0.1:5999/oe: "
        'password authentication failed for user "postgres"'
    )


def test_both_servers_failing_are_named_in_one_line() -> None:
    with pytest.raises(ServersUnreachable) as caught:
        FakeServers([REFUSED], [REFUSED]).check(database_url=PG, redis_url=RD)
    line = str(caught.value)
    assert "\n" not in line and "Postgres at" in line and "Redis at" in line


def test_a_password_echoed_by_a_server_is_scrubbed() -> None:
    with pytest.raises(ServersUnreachable) as caught:
        FakeServers([None], [Problem("AUTH s3cret failed", False)]).check(redis_url=RD)
    assert "s3cret" not in str(caught.value) and "AUTH *** failed" in str(caught.value)


def test_a_user_named_like_the_password_is_not_shown_either() -> None:
    with pytest.raises(ServersUnreachable) as caught:
        FakeServers([BAD_PASSWORD], [None]).check(database_url="postgresql://engine:engine@db/oe")
    assert "engine" not in str(caught.value)


def test_the_api_may_start_while_redis_is_down_without_waiting() -> None:
    servers = FakeServers([None], [REFUSED])
    tolerated = servers.check(database_url=PG, redis_url=RD, wait_s=10, tolerate_redis_outage=True)
    assert [str(p) for p in tolerated] == [
        "cannot reach Redis at redis://:***@127.0.0.1:6999/0: connection refused"
    ]
    assert servers.now == 0


def test_the_api_may_not_start_with_a_redis_that_refuses_it() -> None:
    servers = FakeServers([None], [Problem("authentication failed", False)])
    with pytest.raises(ServersUnreachable, match="cannot use Redis"):
        servers.check(redis_url=RD, tolerate_redis_outage=True)


def test_no_url_no_check() -> None:
    servers = FakeServers([BAD_PASSWORD], [BAD_PASSWORD])
    assert servers.check() == [] and servers.calls == {POSTGRES: 0, REDIS: 0}

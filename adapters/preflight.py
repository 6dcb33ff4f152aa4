"""Start-up checks: can this process reach the Postgres and the Redis it is configured with?

Before `orderengine run` spawns its processes, and before `orderengine api|worker|scheduler|
migrate` start on their own, each configured server gets one real connection (Postgres: a
session; Redis: a PING) with a short timeout. A server that is unreachable or refuses ends
the start in one line that names it, shows its URL with the password masked and says why:

    cannot reach Postgres at postgresql://postgres:***@127.0.0.1:5999/oe: connection refused

(the CLI prefixes `orderengine: ` and exits EXIT_UNREACHABLE), instead of a traceback from
the first query, or a process that starts and crash-loops.

Waiting: a failure that only means "not up yet" (refused, no answer, a host name that does
not resolve yet, Postgres starting up, Redis loading its data) is retried every
RETRY_INTERVAL_S for up to `wait_s` in all (START_WAIT_S for a process started on its own:
a container whose servers may still be starting); one that waiting cannot mend (a wrong
password, an unknown database, a server that is not Postgres or not Redis, a malformed URL)
ends the start at once. Credentials never reach the line: the URL is masked, and any
password it holds is scrubbed from the servers' own messages too.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

POSTGRES = "Postgres"
REDIS = "Redis"
CONNECT_TIMEOUT_S = 3.0  # one attempt; psycopg's own floor is 2 s
START_WAIT_S = 10.0  # how long a process started on its own waits for a server not up yet
RETRY_INTERVAL_S = 0.5
# Exit codes of a start that cannot go on, shared by the CLI and the supervisor (which does
# not restart a process that exits with one of them while the engine is starting).
EXIT_CONFIGURATION = 2  # a setting refused (`orderengine: configuration error: …`)
EXIT_UNREACHABLE = 4  # a server unreachable or refusing at start-up (this module)
MASK = "***"


@dataclass(frozen=True)
class Problem:
    """Why one server cannot be used; `transient`: waiting may mend it (the server is not up yet)."""

    reason: str
    transient: bool


@dataclass(frozen=True)
class ServerProblem:
    service: str  # POSTGRES or REDIS
    url: str  # masked
    problem: Problem
    waited_s: float = 0.0

    def __str__(self) -> str:
        verb = "reach" if self.problem.transient else "use"
        waited = f" (waited {self.waited_s:.0f} s)" if self.waited_s >= 1 else ""
        return f"cannot {verb} {self.service} at {self.url}: {self.problem.reason}{waited}"


class ServersUnreachable(Exception):
    """Some configured server cannot be used; `str()` is the one line to print (without the prefix)."""

    def __init__(self, problems: list[ServerProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


Probe = Callable[[str, float], Problem | None]


# --- Masking ------------------------------------------------------------------------

# A libpq key=value string (`host=… password=…`): the value, bare or single-quoted.
_CONNINFO_PASSWORD = re.compile(r"(?<![\w])((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']*)", re.I)
# A URL's query parameter (`?password=…`).
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)([^&#]*)", re.I)


def mask_url(url: str) -> str:
    """`url` with every password in it replaced by ***: safe to print."""
    return _mask(url)[0]


def _mask(url: str) -> tuple[str, list[str]]:
    """The masked URL and the secrets taken out of it (raw and decoded), to scrub elsewhere."""
    secrets: list[str] = []

    def take(match: re.Match[str]) -> str:
        secrets.append(match.group(2))
        return match.group(1) + MASK

    scheme, sep, rest = url.partition("://")
    if not sep:
        return _CONNINFO_PASSWORD.sub(take, url), _with_decoded(secrets, quoted=True)
    # The last @ ends the user info: a password may hold an unencoded @ (or / ? #, which is
    # why this is not urlsplit, whose netloc would end there and leave the rest in clear).
    userinfo, at, location = rest.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon:
            secrets.append(password)
            userinfo = f"{user}:{MASK}"
        elif scheme.lower() in ("redis", "rediss", "unix"):
            # Redis has no user without a password: `redis://secret@host` is a password
            # written without its colon.
            secrets.append(userinfo)
            userinfo = MASK
    location = _QUERY_PASSWORD.sub(take, location)
    masked = f"{scheme}{sep}{userinfo}{at}{location}"
    return masked, _with_decoded(secrets, quoted=False)


def _with_decoded(secrets: list[str], *, quoted: bool) -> list[str]:
    found = set()
    for raw in secrets:
        secret = raw
        if quoted and len(secret) >= 2 and secret[0] == secret[-1] == "'":
            secret = re.sub(r"\\(.)", r"\1", secret[1:-1])
        found.update({raw, secret, unquote(secret)})
    return sorted((s for s in found if s), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


# --- Reasons ------------------------------------------------------------------------

# libpq's "connection to server at "127.0.0.1", port 5999 failed: " and severity prefixes.
_LIBPQ_PREFIX = re.compile(
    r"^(?:connection failed: )?(?:connection to server (?:at|on socket) .*? failed: )?"
)
_SEVERITY = re.compile(r"^(?:FATAL|ERROR):\s+")
_PG_NOT_UP = (
    "starting up",
    "shutting down",
    "not yet accepting connections",
    "recovery mode",
    "too many clients",
    "remaining connection slots",
)
_PG_NOT_POSTGRES = (
    "ssl negotiation",
    "expected authentication request",
    "server closed the connection",
    "invalid response",
    "unsupported frontend protocol",
    "lost synchronization",
)


def _seconds(value: float) -> str:
    return f"{value:g} s"


def postgres_problem(exc: BaseException, timeout_s: float = CONNECT_TIMEOUT_S) -> Problem:
    """What a failed Postgres connection means, in a phrase (and whether waiting may mend it)."""
    if isinstance(exc, psycopg.errors.ConnectionTimeout) or "timeout expired" in str(exc):
        return Problem(f"no answer within {_seconds(timeout_s)}", True)
    text = str(exc).strip()
    if isinstance(exc, psycopg.ProgrammingError):  # libpq could not parse the URL
        # Its message quotes the bit it choked on, which may be part of a password.
        detail = re.sub(
            r'"[^"]*"',
            lambda m: m.group() if m.group() == '"="' else '"…"',
            text.splitlines()[0] if text else type(exc).__name__,
        )
        return Problem(f"not a valid connection URL ({detail})", False)
    line = next((ln for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    detail = _SEVERITY.sub("", _LIBPQ_PREFIX.sub("", line.strip()))
    lowered = detail.lower()
    if "connection refused" in lowered:
        return Problem("connection refused", True)
    if "no such file or directory" in lowered:  # a Unix socket nobody listens on
        return Problem("no server on that socket", True)
    if resolve := re.match(r"failed to resolve host '?([^':]*)'?: (?:\[Errno -?\d+\] )?(.*)", detail):
        return Problem(f"cannot resolve host {resolve.group(1)} ({resolve.group(2).lower()})", True)
    if "could not translate host name" in lowered:
        return Problem(f"cannot resolve host ({detail})", True)
    if any(marker in lowered for marker in _PG_NOT_UP):
        return Problem(detail, True)
    if any(marker in lowered for marker in _PG_NOT_POSTGRES):
        return Problem(f"not a Postgres server? ({detail})", False)
    return Problem(detail, False)  # a refusal: password, pg_hba.conf, unknown role or database


# redis-py's "Error 111 connecting to 127.0.0.1:6999. Connection refused."
_REDIS_OS_ERROR = re.compile(r"^Error (-?\d+) connecting to (?:unix socket: )?(.*?)\. (.*?)\.?$")
_REDIS_AUTH = ("wrongpass", "noauth", "invalid password", "invalid username-password", "auth ")


def redis_problem(exc: BaseException, timeout_s: float = CONNECT_TIMEOUT_S) -> Problem:
    """What a failed Redis PING means, in a phrase (and whether waiting may mend it)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, ValueError):  # from_url refused the URL
        if "scheme" in lowered:
            return Problem("not a Redis URL (it must start with redis://, rediss:// or unix://)", False)
        return Problem(f"not a valid Redis URL ({text})", False)
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return Problem("the server is loading its data set", True)
    if isinstance(exc, redis.exceptions.AuthenticationError) or (
        isinstance(exc, redis.exceptions.ResponseError) and lowered.startswith(_REDIS_AUTH)
    ):
        return Problem(f"authentication failed ({text})", False)
    if isinstance(exc, redis.exceptions.TimeoutError | TimeoutError | socket.timeout):
        return Problem(f"no answer within {_seconds(timeout_s)}", True)
    if isinstance(exc, redis.exceptions.InvalidResponse):  # it answered, but not in RESP
        return Problem(f"not a Redis server (it answered: {text[:80]})", False)
    if isinstance(exc, redis.exceptions.ResponseError):  # e.g. "DB index is out of range"
        return Problem(text, False)
    if isinstance(exc, redis.exceptions.ConnectionError):
        if "closed by server" in lowered:
            return Problem("the server closed the connection: not a Redis server?", False)
        if os_error := _REDIS_OS_ERROR.match(text):
            errno, where, why = os_error.groups()
            if errno in ("-2", "-3", "-5") or "name or service" in why.lower() or "resolution" in why.lower():
                host = where.rsplit(":", 1)[0]
                return Problem(f"cannot resolve host {host} ({why.lower()})", True)
            if "refused" in why.lower():
                return Problem("connection refused", True)
            if "no such file" in why.lower():
                return Problem("no server on that socket", True)
            return Problem(why[:1].lower() + why[1:], True)  # the network: unreachable, reset…
        return Problem(text, False)
    return Problem(f"{type(exc).__name__}: {text}", False)


# --- Probes: one attempt each -------------------------------------------------------


def probe_postgres(url: str, timeout_s: float) -> Problem | None:
    """One session on `url` (None: it works)."""
    try:
        with psycopg.connect(url, connect_timeout=max(2, round(timeout_s)), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # every failure becomes a reason; none may escape as a traceback
        return postgres_problem(exc, max(2, round(timeout_s)))
    return None


def probe_redis(url: str, timeout_s: float) -> Problem | None:
    """One PING on `url` (None: it answered PONG)."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # the waiting is ours, bounded; not redis-py's 10 retries
        )
    except Exception as exc:
        return redis_problem(exc, timeout_s)
    try:
        if client.ping() is not True:
            return Problem("not a Redis server (no PONG to PING)", False)
    except Exception as exc:
        return redis_problem(exc, timeout_s)
    finally:
        client.close()
    return None


PROBES: Mapping[str, Probe] = {POSTGRES: probe_postgres, REDIS: probe_redis}


# --- The check ----------------------------------------------------------------------


def check_servers(
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    wait_s: float = 0.0,
    tolerate_redis_outage: bool = False,
    timeout_s: float = CONNECT_TIMEOUT_S,
    probes: Mapping[str, Probe] = PROBES,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ServerProblem]:
    """Connect once to each given server, retrying "not up yet" failures for up to `wait_s`.

    Raises ServersUnreachable naming every server that cannot be used. With
    `tolerate_redis_outage` (the API, which serves reads and answers 503 without Redis), a
    Redis that is merely unreachable is not waited for and is returned instead, to be logged;
    a Redis that refuses (wrong password, not Redis) still fails the start.
    """
    pending = {
        service: url for service, url in ((POSTGRES, database_url), (REDIS, redis_url)) if url is not None
    }
    start = clock()
    tolerated: list[ServerProblem] = []
    while True:
        found: dict[str, Problem] = {}
        for service, url in list(pending.items()):
            problem = probes[service](url, timeout_s)
            if problem is None:
                del pending[service]
            else:
                found[service] = problem
        if tolerate_redis_outage and REDIS in found and found[REDIS].transient:
            tolerated.append(_described(REDIS, pending.pop(REDIS), found.pop(REDIS), 0.0))
        if not found:
            return tolerated
        waited = clock() - start
        if any(not p.transient for p in found.values()) or waited + RETRY_INTERVAL_S > wait_s:
            raise ServersUnreachable([_described(s, pending[s], p, waited) for s, p in found.items()])
        sleep(RETRY_INTERVAL_S)


def _described(service: str, url: str, problem: Problem, waited_s: float) -> ServerProblem:
    masked, secrets = _mask(url)
    # Scrubbed of its secrets too: a user named like the password, a server echoing it.
    scrubbed = Problem(_scrub(problem.reason, secrets), problem.transient)
    return ServerProblem(service, _scrub(masked, secrets), scrubbed, waited_s if problem.transient else 0.0)

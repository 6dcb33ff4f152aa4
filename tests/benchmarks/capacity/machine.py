"""What the numbers were measured on: the machine, the servers and their durability
settings, and the code (git commit, dirty or not)."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis

from tests.e2e.engine import REPO


@dataclass(frozen=True)
class Machine:
    date: str
    cores: int
    cpu_model: str
    python: str
    postgres: str
    fsync: str
    synchronous_commit: str
    redis: str
    load_average: str  # at the start: other work on the machine shows here
    commit: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def text(self) -> str:
        return (
            f"{self.cores} cores ({self.cpu_model}), Python {self.python}, PostgreSQL {self.postgres} "
            f"(fsync {self.fsync}, synchronous_commit {self.synchronous_commit}), {self.redis}; "
            f"load average at the start {self.load_average}; commit {self.commit}"
        )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    """`git rev-parse --short HEAD`, plus " dirty" when tracked files have changes."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit} dirty" if git("status", "--porcelain", "--untracked-files=no") else commit


def postgres_settings(database_url: str) -> tuple[str, str, str]:
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        values = [conn.execute(f"SHOW {name}").fetchone() for name in ("server_version", "fsync")]
        commit = conn.execute("SHOW synchronous_commit").fetchone()
    version, fsync = (str(v[0]) if v else "?" for v in values)
    return version, fsync, str(commit[0]) if commit else "?"


def redis_version(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        info = client.info("server")
    finally:
        client.close()
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}"
    return f"Redis {info.get('redis_version', '?')}"


def machine(database_url: str, redis_url: str) -> Machine:
    version, fsync, synchronous_commit = postgres_settings(database_url)
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=os.cpu_count() or 0,
        cpu_model=cpu_model(),
        python=platform.python_version(),
        postgres=version,
        fsync=fsync,
        synchronous_commit=synchronous_commit,
        redis=redis_version(redis_url),
        load_average=" ".join(f"{v:.2f}" for v in os.getloadavg()),
        commit=git_commit(),
    )

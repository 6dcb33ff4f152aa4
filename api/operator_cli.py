"""The operator's commands: `replay`, `audit` and `events tail`.

Exit codes scripts can rely on:
  0  done (audit: no divergence)
  1  audit found divergences, or the database could not be reached
  2  a usage mistake (bad id, bad time, unknown option)
  3  the order does not exist
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec
import psycopg
import psycopg.errors

from adapters.bootstrap import operator_database
from adapters.database import Database
from adapters.postgres_event_store import EVENT_COLUMNS, read_all, row_to_recorded
from adapters.settings import Settings
from api.client_messages import event_details
from domain.ports import RecordedEvent
from domain.replay import ReplayError, replay

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3


class CommandError(Exception):
    """A mistake or a condition the user should read about, with the exit code to return."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="an order's timeline and its state at a version or instant",
        description="Print an order's events (time, version, event, key details) and the state they fold "
        "to, with the engine's own fold. Exit 3 if the order does not exist.",
    )
    p.add_argument("order_id", metavar="ORDER_ID", help="the order's id (a UUID)")
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--to-version", type=int, metavar="N", help="stop after version N")
    cut.add_argument("--as-of", metavar="TIMESTAMP", help="stop at this instant (ISO 8601 with a timezone)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_replay)

    a = sub.add_parser(
        "audit",
        help="check the log and compare every order with the read models",
        description="Check that versions are contiguous, positions increase and every event's hash chain "
        "holds, then fold every order and compare it with the orders table and its statistics row field "
        "by field, and check the per-user and per-pair sums. Exit 1 if anything diverges.",
    )
    a.add_argument("--since", metavar="TIMESTAMP", help="only orders with an event at or after this instant")
    a.add_argument("--json", action="store_true", help="print JSON instead of lines")
    a.set_defaults(handler=_audit)

    e = sub.add_parser("events", help="read the event log", description="Read the event log.")
    esub = e.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    t = esub.add_parser(
        "tail",
        help="follow the log live",
        description="Print events as they are appended (Ctrl-C stops). Starts at the end of the log "
        "unless --from-position is given.",
    )
    t.add_argument("--order", metavar="ORDER_ID", help="only this order's events")
    t.add_argument("--from-position", type=int, metavar="N", help="start after log position N (0: the start)")
    t.add_argument("--count", type=int, metavar="N", help="stop after N events")
    t.add_argument("--json", action="store_true", help="one JSON object per line")
    t.set_defaults(handler=_tail)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with database_url(settings) as url:
            return int(asyncio.run(_with_database(url, args)))
    except CommandError as exc:
        print(f"orderengine: {exc}", file=sys.stderr)
        return exc.code
    except psycopg.OperationalError as exc:
        print(f"orderengine: {unreachable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction):
        print("orderengine: the database is not migrated: run `orderengine migrate` first", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


async def _with_database(url: str, args: argparse.Namespace) -> int:
    """Run the command's handler with the database the composition root builds for it."""
    async with operator_database(url) as db:
        return int(await args.handler(db, args))


def unreachable(exc: psycopg.OperationalError) -> str:
    # libpq's message runs over several lines ("Is the server running…"): the first says it.
    lines = str(exc).strip().splitlines()
    return f"cannot reach the database: {lines[0] if lines else type(exc).__name__}"


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL; else the running engine's embedded Postgres; else one started for this command."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    from adapters.embedded_servers import EmbeddedServers, EmbeddedServersError, running_postgres_url

    running = running_postgres_url(settings.data_dir)
    if running is not None:
        yield running
        return
    servers = EmbeddedServers(settings.data_dir)
    try:
        url, _ = servers.start()
    except EmbeddedServersError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    try:
        yield url
    finally:
        servers.stop()


def _order_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise CommandError(f"{raw!r} is not an order id (a UUID)") from None


def _instant(raw: str, option: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"{option} {raw!r} is not an ISO 8601 time, e.g. 2026-11-24T12:00:00Z") from None
    if at.tzinfo is None:
        raise CommandError(f"{option} {raw!r} needs a timezone, e.g. 2026-11-24T12:00:00Z")
    return at


# -- replay ------------------------------------------------------------------------------


async def _replay(db: Database, args: argparse.Namespace) -> int:
    order_id = _order_id(args.order_id)
    as_of = _instant(args.as_of, "--as-of") if args.as_of else None
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = %s ORDER BY version", (order_id,)
        )
        history = [row_to_recorded(r) for r in await cur.fetchall()]
    if not history:
        raise CommandError(f"no order {order_id} in the log", EXIT_NOT_FOUND)
    try:
        kept, state = replay(history, to_version=args.to_version, as_of=as_of)
    except ReplayError as exc:
        raise CommandError(str(exc)) from None
    state_json = msgspec.to_builtins(state)
    if args.json:
        print(
            json.dumps(
                {
                    "orderId": order_id,
                    "events": [_event_json(r) for r in kept],
                    "state": state_json,
                    "versions": len(history),
                },
                default=str,
            )
        )
        return EXIT_OK
    print(f"order {order_id}: {len(kept)} of {len(history)} events")
    for r in kept:
        print(f"{_time(r.recorded_at)}  v{r.version:<3} {r.type:<20} {_summary(r)}")
    shown = {k: v for k, v in state_json.items() if v not in (None, [], "")}
    print("state: " + ", ".join(f"{k}={_short(v)}" for k, v in shown.items()))
    return EXIT_OK


def _event_json(r: RecordedEvent) -> dict[str, Any]:
    return {
        "position": r.position,
        "version": r.version,
        "type": r.type,
        "recordedAt": r.recorded_at.isoformat(),
        "details": event_details(r.event),
        "actor": r.metadata.actor,
        "attempt": r.metadata.attempt,
    }


def _time(at: datetime) -> str:
    return at.astimezone().isoformat(timespec="milliseconds")


def _summary(r: RecordedEvent) -> str:
    details = event_details(r.event)
    quotes = details.pop("quotes", None)
    details.pop("quote", None)
    parts = [f"{k}={_short(v)}" for k, v in details.items() if v not in (None, [], "")]
    if quotes:
        parts.insert(0, "quotes=" + " ".join(f"{q['dex']}@{q['price']}" for q in quotes))
    if r.metadata.attempt:
        parts.append(f"attempt={r.metadata.attempt}")
    return " ".join(parts)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 90 else text[:87] + "..."


# -- audit -------------------------------------------------------------------------------


async def _audit(db: Database, args: argparse.Namespace) -> int:
    from projections.audit import audit

    since = _instant(args.since, "--since") if args.since else None
    progress = _Progress("audit") if sys.stderr.isatty() and not args.json else None
    report = await audit(db, since=since, progress=progress.update if progress else None)
    if progress:
        progress.done()
    if args.json:
        body = {
            "streams": report.streams,
            "events": report.events,
            "hashedEvents": report.hashed_events,
            "checkpoint": report.checkpoint,
            "statsCheckpoint": report.stats_checkpoint,
            "rowsCompared": report.rows_compared,
            "statsRowsCompared": report.stats_rows_compared,
            "outdated": report.outdated,
            "seconds": round(report.seconds, 3),
            "eventsPerSecond": round(report.events_per_s),
            "divergences": [_divergence_json(d) for d in report.divergences],
        }
        print(json.dumps(body, default=str))
    else:
        print(
            f"audited {report.streams} streams, {report.events} events ({report.hashed_events} "
            f"hash-chained) in {report.seconds:.2f} s ({report.events_per_s:,.0f} events/s); compared "
            f"{report.rows_compared} orders rows up to position {report.checkpoint}, "
            f"{report.stats_rows_compared} stats rows up to position {report.stats_checkpoint}, and the sums"
        )
        for name in report.outdated:
            print(
                f"note: the {name} projection was built by older code; a rebuild is due "
                f"(`orderengine projections rebuild {name}`), and until then its rows may differ"
            )
        for d in report.divergences:
            where = f" v{d.version}" if d.version else ""
            line = f"DIVERGENCE {d.kind} {d.order_id}{where}: {d.detail}"
            if d.field:
                line += f" (log: {_short(d.log_value)!s}, read model: {_short(d.read_model_value)!s})"
            print(line)
        print("no divergences" if not report.divergences else f"{len(report.divergences)} divergences")
    return EXIT_FAILED if report.divergences else EXIT_OK


def _divergence_json(d: Any) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "orderId": d.order_id,
        "detail": d.detail,
        "field": d.field,
        "logValue": d.log_value,
        "readModelValue": d.read_model_value,
        "version": d.version,
    }


class _Progress:
    """Events done and rate on one rewritten terminal line."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.shown = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.shown >= 0.2:
            self.shown = now
            rate = done / max(now - self.started, 1e-9)
            print(f"\r{self.label}: {done:,} events, {rate:,.0f} events/s", end="", file=sys.stderr)

    def done(self) -> None:
        print(file=sys.stderr)


# -- events tail -------------------------------------------------------------------------


async def _tail(db: Database, args: argparse.Namespace) -> int:
    order = _order_id(args.order) if args.order else None
    if args.count is not None and args.count < 1:
        raise CommandError("--count must be at least 1")
    if args.from_position is not None and args.from_position < 0:
        raise CommandError("--from-position must be 0 or more")
    printed = 0
    async with db.pool.connection() as conn:
        if args.from_position is not None:
            after = args.from_position
        else:
            cur = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
            row = await cur.fetchone()
            after = int(row[0]) if row else 0
        while True:  # until Ctrl-C or --count
            batch = await read_all(conn, after, 1000)
            for r in batch:
                after = r.position
                if order is not None and r.stream_id != order:
                    continue
                if args.json:
                    print(json.dumps({"streamId": r.stream_id, **_event_json(r)}, default=str), flush=True)
                else:
                    line = (
                        f"{_time(r.recorded_at)}  #{r.position:<8} {r.stream_id} v{r.version:<3} {r.type:<20}"
                    )
                    print(f"{line} {_summary(r)}", flush=True)
                printed += 1
                if args.count is not None and printed >= args.count:
                    return EXIT_OK
            if len(batch) < 1000:
                await asyncio.sleep(0.2)

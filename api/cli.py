"""`orderengine`: run the engine or one of its processes, and apply migrations.

orderengine run          everything (embedded Postgres/Valkey unless URLs are set)
orderengine migrate      apply database migrations and exit
orderengine api|worker|scheduler   one process, for containers and the supervisor
orderengine replay|audit|events tail   read the log: an order's history, divergences, live events
orderengine projections rebuild|status rebuild a read model without downtime, or show each one's lag
"""

from __future__ import annotations

import argparse
import logging
import sys

from adapters import preflight
from adapters.settings import Settings, SettingsError, load_settings


def _api(settings: Settings) -> int:
    import gc

    import uvicorn

    # Thousands of WebSockets make every full collection long (over a second at 10,000
    # sockets, measured by tests/benchmarks/fanout.py): collect the young generation
    # less often and the old one much less often.
    gc.set_threshold(5_000, 20, 100)

    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        # Clients keep connections open between orders; past uvicorn's 5 s default they
        # raced its close and got a reset on their next request (seen in a flood).
        timeout_keep_alive=65,
        ws="api.ws_protocol:WebSocketsProtocol",  # websockets-sansio that answers what it refuses
        # Messages are small JSON: compression halves no bandwidth worth having and
        # doubles the memory of each connection (79 kB against 36 kB, measured).
        ws_per_message_deflate=False,
        backlog=4096,  # a reconnect storm of thousands of sockets overflowed the default 2048
        ws_ping_interval=settings.ws_ping_interval_s or None,
        ws_ping_timeout=settings.ws_ping_timeout_s or None,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,
    )
    return 0


def _worker(settings: Settings) -> int:
    from workers.worker_main import run_worker

    return run_worker(settings)


def _scheduler(settings: Settings) -> int:
    from workers.scheduler import run_scheduler

    return run_scheduler(settings)


def _migrate(settings: Settings) -> int:
    from db.migrate import apply_migrations

    if settings.database_url is None:
        from adapters.embedded_servers import EmbeddedServers

        servers = EmbeddedServers(settings.data_dir)
        database_url, _ = servers.start()
        try:
            applied = apply_migrations(database_url)
        finally:
            servers.stop()
    else:
        applied = apply_migrations(settings.database_url)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _launch(settings: Settings, token: str) -> int:
    """Ask the running engine's API to launch a token (mock market)."""
    import json
    import urllib.error
    import urllib.request

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    request = urllib.request.Request(
        f"http://{host}:{settings.port}/api/market/launches",
        data=json.dumps({"token": token}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            result = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"orderengine: launch refused: {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"orderengine: cannot reach the engine at {host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    state = "launched" if result["launched"] else "already launched"
    print(f"{token}: {state}; {result['ordersWoken']} orders woken")
    return 0


def _check_servers(settings: Settings, command: str) -> int:
    """Before a process starts on its own: can it use its Postgres and Redis? 0 if so;
    otherwise it prints one line saying which cannot be used and why, and returns the exit code.

    A container's servers may still be starting, so a server not up yet is waited for (up
    to START_WAIT_S, adapters/preflight.py). `orderengine run` checks in the supervisor.
    """
    if command == "migrate":
        if settings.database_url is None:
            return 0  # it starts the embedded Postgres itself
    elif not settings.has_external_servers:
        print(
            f"orderengine: configuration error: orderengine {command} needs DATABASE_URL and REDIS_URL "
            "(orderengine run starts embedded servers when they are unset)",
            file=sys.stderr,
        )
        return preflight.EXIT_CONFIGURATION
    try:
        # The API alone rides out a Redis outage (orders get 503, /readyz names Redis, its
        # stream reader reconnects), so it may start during one; the others need Redis to work.
        tolerated = preflight.check_servers(
            database_url=settings.database_url,
            redis_url=None if command == "migrate" else settings.redis_url,
            wait_s=preflight.START_WAIT_S,
            tolerate_redis_outage=command == "api",
        )
    except preflight.ServersUnreachable as exc:
        print(f"orderengine: {exc}", file=sys.stderr, flush=True)
        return preflight.EXIT_UNREACHABLE
    for problem in tolerated:
        logging.getLogger("orderengine.preflight").warning(
            "%s; starting anyway: orders get 503 and /readyz names it until it answers", problem
        )
    return 0


def _run(settings: Settings, localnet_port: int | None = None) -> int:
    from api.supervisor import run_engine

    return run_engine(settings, localnet_port=localnet_port)


def _localnet(settings: Settings, port: int, slot_ms: int) -> int:
    from adapters.localnet.runner import run_localnet

    return run_localnet(settings, port=port, slot_ms=slot_ms)


COMMANDS = {
    "run": (_run, "run the whole engine: API, worker and scheduler (and embedded servers if needed)"),
    "migrate": (_migrate, "apply database migrations and exit"),
    "api": (_api, "run the HTTP/WebSocket API process"),
    "worker": (_worker, "run a Dramatiq worker process"),
    "scheduler": (_scheduler, "run the scheduler process (outbox relay, projections, jobs)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orderengine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {
        name: sub.add_parser(name, help=help_text, description=help_text)
        for name, (_, help_text) in COMMANDS.items()
    }
    parsers["run"].add_argument(
        "--localnet",
        action="store_true",
        help="also run a local Solana chain (orderengine localnet) and trade on it (USE_REAL_DEVNET=true)",
    )
    parsers["run"].add_argument("--localnet-port", type=int, default=8899, help="its RPC port (default 8899)")
    localnet = sub.add_parser(
        "localnet",
        help="run a local Solana chain with test pools (Raydium CPMM, Meteora DAMM v2) on 127.0.0.1",
        description=(
            "Run a local Solana chain on 127.0.0.1 (LiteSVM, with the two pool programs emulated), fund "
            "the wallet of WALLET_PRIVATE_KEY, create the test pools and write their addresses to "
            "SOLANA_POOLS_FILE (default DATA_DIR/localnet/pools.json). See docs/devnet.md."
        ),
    )
    localnet.add_argument("--port", type=int, default=8899, help="RPC port (default 8899)")
    localnet.add_argument(
        "--slot-ms", type=int, default=400, help="one slot every this many ms (default 400)"
    )
    launch = sub.add_parser(
        "launch",
        help="launch a token in the mock market (its sniper orders fire)",
        description=_launch.__doc__,
    )
    launch.add_argument("token", help="the token symbol, e.g. LAUNCH")
    from api import operator_cli, projection_commands

    operator_cli.register(sub)
    projection_commands.register(sub)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"orderengine: configuration error: {exc}", file=sys.stderr)
        return preflight.EXIT_CONFIGURATION
    from adapters.logging_setup import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if args.command in {"api", "worker", "scheduler", "migrate"}:
        if (code := _check_servers(settings, args.command)) != 0:
            return code
    if args.command in {"api", "worker", "scheduler"} and settings.database_url:
        from db.migrate import apply_migrations

        apply_migrations(settings.database_url)  # idempotent; serialised by an advisory lock
    if args.command == "launch":
        return _launch(settings, args.token)
    if args.command == "localnet":
        if not 1 <= args.port <= 65_535 or not 1 <= args.slot_ms <= 60_000:
            print("orderengine: --port must be 1-65535 and --slot-ms 1-60000", file=sys.stderr)
            return 2
        return _localnet(settings, args.port, args.slot_ms)
    if args.command == "run":
        if not 1 <= args.localnet_port <= 65_535:
            print("orderengine: --localnet-port must be 1-65535", file=sys.stderr)
            return 2
        try:
            return _run(settings, args.localnet_port if args.localnet else None)
        except KeyboardInterrupt:
            return 130
    if getattr(args, "handler", None) is not None:
        return operator_cli.run(settings, args)
    try:
        return COMMANDS[args.command][0](settings)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

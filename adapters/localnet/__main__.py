"""Run the local chain's RPC server: `python -m adapters.localnet [--port 8899] [--slot-ms 400]`.

`--emulate-ata` runs the Associated Token Account program in Python instead of
LiteSVM's real one. Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from adapters.localnet.ata import AssociatedTokenAccountProgram
from adapters.localnet.chain import LocalChain
from adapters.localnet.emulation import EmulatedProgram
from adapters.localnet.rpc_server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--slot-ms", type=int, default=400)
    parser.add_argument("--emulate-ata", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    programs: list[EmulatedProgram] = [AssociatedTokenAccountProgram()] if args.emulate_ata else []
    chain = LocalChain(emulated_programs=programs)
    logging.getLogger(__name__).info("localnet RPC on http://%s:%d", args.host, args.port)
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises the interrupt.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(chain, args.host, args.port, args.slot_ms))


if __name__ == "__main__":
    main()

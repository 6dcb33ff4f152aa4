"""Micro-benchmark: CPU per WebSocket message text, the work done once per event per API process.

    .venv/bin/python -m tests.benchmarks.client_messages [--number 20000] [--repeat 7]

Prints µs of CPU (process time, so other work on the machine matters less) per message, best
of the repeats, for the order stream text and the user stream text of each example in
tests/unit/test_client_messages.py, and their mean.
"""

from __future__ import annotations

import argparse
import time
import timeit

from api.live_entry import order_message_text, user_message_text
from tests.unit.test_client_messages import EXAMPLES, recorded


def per_message_us(fn: object, arg: object, number: int, repeat: int) -> float:
    timer = timeit.Timer(lambda: fn(arg), timer=time.process_time)  # type: ignore[operator]
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    totals = {"order": 0.0, "user": 0.0}
    print(f"{'example':<20} {'order µs':>9} {'user µs':>9}")
    for name, event in EXAMPLES.items():
        entry = recorded(event)
        order = per_message_us(order_message_text, entry, args.number, args.repeat)
        user = per_message_us(user_message_text, entry, args.number, args.repeat)
        totals["order"] += order
        totals["user"] += user
        print(f"{name:<20} {order:>9.2f} {user:>9.2f}")
    n = len(EXAMPLES)
    print(f"{'mean':<20} {totals['order'] / n:>9.2f} {totals['user'] / n:>9.2f}")


if __name__ == "__main__":
    main()

"""The engine's capacity, measured black-box, with a report: `docs/performance.md`
(the part between its `capacity` markers), `docs/performance.json`, `docs/performance.png`.

    .venv/bin/python -m tests.benchmarks.capacity              # everything, 3 runs (~20 min)
    .venv/bin/python -m tests.benchmarks.capacity --quick      # smoke: 200 orders, 1 run, ~1 min
    .venv/bin/python -m tests.benchmarks.capacity --scenarios capacity --orders 500 --runs 1

Every run starts a fresh engine (`orderengine run` via tests/e2e/engine.py, on its own
defaults as flood.py's `make_engine` sets it up, LOG_LEVEL=WARNING) on a fresh database
and Redis prefix, and ends with `orderengine audit --json` on that database.

1. capacity: a burst of `--orders` SOL→USDC market orders, DEX latency 0, limits lifted;
   50 and 200 in flight (client tasks sharing one iterator of orders), each without a
   subscriber and with one WebSocket per order (read to its terminal message before the
   task takes the next order). orders/s = confirmed in the log / (last terminal
   `recorded_at` − first POST sent); POST and POST→confirmed latency; non-200 answers;
   every socket's versions against its order's log minus internal events; CPU per
   process kind over the burst (/proc), per order; gaps between consecutive events.
2. POST latency under load: the 200-in-flight runs of 1.
3. one order's overhead: one order at a time, POST → `confirmed` on its socket.
4. idle: the ready engine on its defaults, 5 s to settle, 30 s of CPU.
5. brief defaults: flood.py's 200-order flood on the default settings.

Only talks to 127.0.0.1; orders, runs, every call and every wait are bounded.
"""

#!/usr/bin/env bash
# Run the whole order engine: embedded Postgres and Valkey (unless DATABASE_URL and
# REDIS_URL are set), migrations, the API, the worker and the scheduler. Ctrl-C stops all.
# Arguments are passed to `python -m api.cli run`. Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/ensure_venv.sh

exec .venv/bin/python -m api.cli run "$@"

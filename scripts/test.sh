#!/usr/bin/env bash
# Run the test suite with the options from pyproject.toml ([tool.pytest.ini_options]).
# Arguments are passed to pytest, e.g. `scripts/test.sh tests/unit -x`. Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/ensure_venv.sh

exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Sourced by scripts/run.sh and scripts/test.sh from the repo root.
# Creates .venv with Python >= 3.11 if missing; reinstalls the project only when
# pyproject.toml changed since the last install (its sha256 is kept in .venv).
need_python() {
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}
if [[ ! -x .venv/bin/python ]]; then
  python="${PYTHON:-python3}"
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: '$python' not found: install Python 3.11 or newer (or set PYTHON=/path/to/python3.11)" >&2
    exit 1
  fi
  if ! need_python "$python"; then
    echo "error: Python 3.11 or newer is required, '$python' is $("$python" -V 2>&1)." >&2
    echo "       Install it and re-run, or set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  "$python" -m venv .venv
elif ! need_python .venv/bin/python; then
  echo "error: .venv uses $(.venv/bin/python -V 2>&1); Python 3.11 or newer is required." >&2
  echo "       Remove .venv and re-run (set PYTHON=/path/to/python3.11 if python3 is older)." >&2
  exit 1
fi
if [[ ! -f pyproject.toml ]]; then
  echo "error: pyproject.toml not found in $PWD" >&2
  exit 1
fi
stamp=.venv/.pyproject.sha256
wanted=$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' pyproject.toml)
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]]; then
  echo "Installing the project into .venv (pyproject.toml changed)..." >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
  echo "$wanted" > "$stamp"
fi

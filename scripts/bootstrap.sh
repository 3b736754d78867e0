#!/usr/bin/env bash
# Create .venv and install qdash with its dev tools; a no-op when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python=$(command -v python3.11 || command -v python3)
  echo "Creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi

# Reinstall only when the dependency list changed since the last install.
if [ pyproject.toml -nt .venv/.installed ]; then
  echo "Installing qdash and its dependencies into .venv (log: .venv/install.log)"
  pip="./.venv/bin/python -m pip --disable-pip-version-check"
  if ! { $pip install --upgrade pip && $pip install -e '.[dev]'; } >.venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    exit 1
  fi
  touch .venv/.installed
fi

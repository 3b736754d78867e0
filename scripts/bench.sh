#!/usr/bin/env bash
# Run the benchmarks in bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

if [ ! -f bench/__main__.py ]; then
  echo "No benchmarks yet (bench/__main__.py is missing)."
  exit 0
fi
exec python -m bench "$@"

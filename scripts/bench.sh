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
case " $* " in
  *" --engine "* | *" --edge "*)  # the sustained-submission and edge rows drive the web processes with wrk
    if ! command -v wrk >/dev/null; then
      echo "installing Debian's wrk for the sustained-submission row"
      apt-get install -y -qq wrk >/dev/null || echo "warning: wrk could not be installed"
    fi ;;
esac
exec python -m bench "$@"

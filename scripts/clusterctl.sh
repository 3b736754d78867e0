#!/usr/bin/env bash
# supervisorctl for the cluster `make cluster` runs: status, restart web:web-0, tail -f ...
set -euo pipefail
cd "$(dirname "$0")/.."
export QDASH_CLUSTER_DIR=${QDASH_CLUSTER_DIR:-$PWD/.cluster}
exec .venv/bin/supervisorctl -c deploy/supervisord.conf "$@"

#!/usr/bin/env bash
# Start qdash on http://127.0.0.1:8000 with demo data and demo traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python manage.py serve --demo "$@"

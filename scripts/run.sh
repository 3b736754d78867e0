#!/usr/bin/env bash
# Start qdash on http://127.0.0.1:8000 with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

python manage.py migrate --noinput
if python manage.py help serve >/dev/null 2>&1; then
  exec python manage.py serve --demo "$@"
fi
exec python manage.py runserver 127.0.0.1:8000 "$@"

#!/usr/bin/env bash
# Lint, types, the test suite on SQLite and PostgreSQL, and the example scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

PG_URL=${QDASH_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}
REDIS_TEST_URL=redis://127.0.0.1:6379/0
SHARED=../shared
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ran=()
skipped=()

step() { printf '\n==> %s\n' "$*"; }

REDIS_CHECK_URL=$REDIS_TEST_URL
# shellcheck source=scripts/services.sh
. scripts/services.sh

# missing NAME: a service is down; fatal in CI, otherwise skip what needs it.
missing() {
  if [ "${CI:-}" = true ]; then
    echo "error: $1 is not available and could not be started or installed" >&2
    exit 1
  fi
  echo "warning: $1 is not available; skipping the tests that need it" >&2
}

step "services"
start_pg >/dev/null
if wait_for 20 pg_up; then export QDASH_TEST_PG=1; echo "PostgreSQL: up"; else missing PostgreSQL; fi

start_redis >/dev/null
if wait_for 10 redis_up; then export QDASH_TEST_REDIS=1; echo "Redis: up"; else missing Redis; fi

step "browser"
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing Debian chromium and chromium-driver for the browser tests"
  if ! { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } >/dev/null; then
    missing "Debian chromium"
  fi
fi
[ -x /usr/bin/chromium ] && echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"

step "ruff"
ruff check .
ruff format --check .
ran+=(lint)

step "mypy"
mypy qdash scheduler
ran+=(types)

step "pytest on SQLite"
DATABASE_URL="sqlite:///$tmp/t.sqlite3" python -m pytest -n 2 -p no:cacheprovider
ran+=("pytest/sqlite")

if [ -n "${QDASH_TEST_PG:-}" ]; then
  step "pytest on PostgreSQL (tests marked django_db or postgres)"
  rc=0
  DATABASE_URL="$PG_URL" python -m pytest -m "django_db or postgres" -n 2 -p no:cacheprovider || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "no tests are marked django_db yet: nothing to run on PostgreSQL"
  elif [ "$rc" -ne 0 ]; then
    exit "$rc"
  fi
  ran+=("pytest/postgresql")
else
  skipped+=("pytest/postgresql")
fi

# check ENGINE [DATABASE_URL]: run the example scenarios through `manage.py simulate`
# (the db engine simulates in a scratch database of that kind).
check() (
  if [ -n "${2:-}" ]; then export DATABASE_URL="$2"; fi
  python "$SHARED/check_scenario.py" --python .venv/bin/python --engine "$1" \
    "$SHARED"/scenarios/*.json
)

if [ -f "$SHARED/check_scenario.py" ] && python manage.py help simulate >/dev/null 2>&1; then
  step "scenarios, memory engine"
  check memory
  step "scenarios, db engine on SQLite"
  check db "sqlite:///$tmp/scenarios.sqlite3"
  ran+=("scenarios/memory" "scenarios/sqlite")
  if [ -n "${QDASH_TEST_PG:-}" ]; then
    step "scenarios, db engine on PostgreSQL"
    check db "$PG_URL"
    ran+=("scenarios/postgresql")
  else
    skipped+=("scenarios/postgresql")
  fi
else
  skipped+=(scenarios)
fi

printf '\nOK: %s' "${ran[*]}"
[ "${#skipped[@]}" -eq 0 ] || printf ' (skipped: %s)' "${skipped[*]}"
printf '\n'

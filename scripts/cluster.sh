#!/usr/bin/env bash
# qdash as a cluster on this machine, under supervisord: two web processes on one port,
# a scheduler leader and a standby, two executor workers, the demo traffic.
# Reads DATABASE_URL, REDIS_URL and PORT (defaults: the local PostgreSQL's database
# "qdash", the local Redis, 8000). Ctrl-C or SIGTERM stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

export DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/qdash}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/1}
export PORT=${PORT:-8000}
export QDASH_HOST=${QDASH_HOST:-127.0.0.1}
export QDASH_HOME=$PWD
export QDASH_CLUSTER_DIR=${QDASH_CLUSTER_DIR:-$PWD/.cluster}
export QDASH_EXECUTORS=workers
export QDASH_WEB_PROCESSES=${QDASH_WEB_PROCESSES:-2}
export QDASH_SCHEDULERS=${QDASH_SCHEDULERS:-2}
export QDASH_EXECUTORS_PROCESSES=${QDASH_EXECUTORS_PROCESSES:-2}
export QDASH_EXECUTOR_CONCURRENCY=${QDASH_EXECUTOR_CONCURRENCY:-2}
export QDASH_EXECUTOR_MEMORY_MB=${QDASH_EXECUTOR_MEMORY_MB:-2048}
export QDASH_DEMO_TRAFFIC=${QDASH_DEMO_TRAFFIC:-true}
export QDASH_DB_POOL_SIZE=${QDASH_DB_POOL_SIZE:-8}

case "$DATABASE_URL" in
  postgres://* | postgresql://*) ;;
  *) echo "error: the cluster needs PostgreSQL: DATABASE_URL=postgresql://..." >&2; exit 2 ;;
esac
PG_URL=$DATABASE_URL
REDIS_CHECK_URL=$REDIS_URL
# shellcheck source=scripts/services.sh
. scripts/services.sh

# PostgreSQL and Redis: started if they are down (and stopped again on the way out).
started=()
server_url=$(python -c "import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(path='/postgres').geturl())" "$DATABASE_URL")
PG_URL=$server_url
[ -n "$(start_pg)" ] && started+=(postgresql)
wait_for 30 pg_up || { echo "error: PostgreSQL is not reachable at $DATABASE_URL" >&2; exit 1; }
[ -n "$(start_redis)" ] && started+=(redis)
wait_for 15 redis_up || { echo "error: Redis is not reachable at $REDIS_URL" >&2; exit 1; }
PG_URL=$DATABASE_URL

stop_services() {
  for service in "${started[@]}"; do
    case $service in
      postgresql) pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -n 1)" main stop || true ;;
      redis) python -c "import redis, sys; redis.Redis.from_url(sys.argv[1]).shutdown(nosave=True)" "$REDIS_URL" 2>/dev/null || true ;;
    esac
  done
}

# The database, its tables, the demo data and the secret key every process shares.
python - "$DATABASE_URL" <<'PY'
import sys, urllib.parse as u
import psycopg
from psycopg import sql
target = u.urlsplit(sys.argv[1])
name = target.path.lstrip("/")
with psycopg.connect(target._replace(path="/postgres").geturl(), autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"created database {name}")
PY
python manage.py migrate --no-input -v 0
python manage.py shell -c "from scheduler.demo import demo_load; demo_load()"

mkdir -p "$QDASH_CLUSTER_DIR/logs"
echo "qdash cluster on http://$QDASH_HOST:$PORT/ (logs: $QDASH_CLUSTER_DIR/logs;" \
  "status: scripts/clusterctl.sh status)"
echo "demo logins: alice / alice (researcher), admin / admin (operator)"
supervisord -c deploy/supervisord.conf &
supervisor=$!
trap 'kill -TERM "$supervisor" 2>/dev/null || true' INT TERM
status=0
wait "$supervisor" || status=$?
if kill -0 "$supervisor" 2>/dev/null; then wait "$supervisor" || true; fi  # after a signal
stop_services
exit "$status"

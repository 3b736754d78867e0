# Sourced by test.sh and cluster.sh: is PostgreSQL / Redis up, and start it if it is not.
# Expects PG_URL and REDIS_CHECK_URL, and .venv/bin on PATH.

pg_up() { python -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=2).close()" "$PG_URL"; }
redis_up() { python -c "import redis, sys; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()" "$REDIS_CHECK_URL"; }

# wait_for SECONDS CHECK: retry CHECK until it succeeds or the time is up.
wait_for() {
  local deadline=$((SECONDS + $1))
  until "$2" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# start_pg / start_redis: start the local service if it is down and can be started here;
# prints "started" when it did.
start_pg() {
  if ! pg_up >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -n 1)" main start >&2 \
      && echo started || true
  fi
}

start_redis() {
  if ! redis_up >/dev/null 2>&1 && command -v redis-server >/dev/null; then
    echo "starting Redis" >&2
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >&2 && echo started || true
  fi
}

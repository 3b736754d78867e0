#!/usr/bin/env bash
# Run qiskit-ibm-runtime's own integration tests (from its PyPI sdist) against qdash.
#
# Starts `manage.py serve --demo` on a scratch SQLite database and a free port,
# issues an API key for the demo user alice, and runs the client's
# test/integration modules against it from a throwaway virtualenv (the project's
# environment and requirements are never touched). Prints one line per test and
# a summary; the full pytest output and the server log stay in $WORK.
#
# The virtualenv also gets pytest, pytest-timeout, responses and simplejson, which the tests use.
#
# Environment (all optional):
#   CLIENT_VERSION   qiskit-ibm-runtime release to test (default 0.51.0, the minimum qdash
#                    supports; "latest" takes the newest release on the package index)
#   QISKIT_IBM_QPU   backend the tests run on (default test_eagle_qdash, a backend the script
#                    adds, 1 s per job, which the demo traffic leaves alone; demo ones such as
#                    sim_kyiv work but share the demo traffic)
#   TEST_TIMEOUT     seconds per test (default 60)
#   PORT             port of the scratch server (default: a free one)
#   SUITE_TIMEOUT    seconds for the whole pytest run (default 900)
#   MODULES          test modules (default: sampler_v2 estimator_v2 executor executor_sampler
#                    executor_estimator job retrieve_job results session backend ibm_job_attributes)
#   WORK             scratch directory (default: a new one under /tmp, kept for reading)
#   CLIENT_VENV      the throwaway virtualenv (default /tmp/qdash-client-venv, reused)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
CLIENT_VERSION="${CLIENT_VERSION:-0.51.0}"
QPU="${QISKIT_IBM_QPU:-test_eagle_qdash}"
TEST_TIMEOUT="${TEST_TIMEOUT:-60}"
SUITE_TIMEOUT="${SUITE_TIMEOUT:-900}"
MODULES="${MODULES:-test_sampler_v2 test_estimator_v2 test_executor test_executor_sampler \
test_executor_estimator test_job test_retrieve_job test_results test_session test_backend \
test_ibm_job_attributes}"
WORK="${WORK:-$(mktemp -d /tmp/qdash-client-suite.XXXXXX)}"
CLIENT_VENV="${CLIENT_VENV:-/tmp/qdash-client-venv}"
mkdir -p "$WORK"
echo "scratch directory: $WORK"

# --- the client's tests, from the sdist -------------------------------------------
if [ ! -x "$CLIENT_VENV/bin/python" ]; then
    python3 -m venv "$CLIENT_VENV"
fi
if [ "$CLIENT_VERSION" = latest ]; then
    CLIENT_VERSION="$("$CLIENT_VENV/bin/pip" index versions qiskit-ibm-runtime 2>/dev/null \
        | sed -n 's/^qiskit-ibm-runtime (\(.*\))$/\1/p')"
    if [ -z "$CLIENT_VERSION" ]; then
        echo "could not read the newest qiskit-ibm-runtime from the package index" >&2
        exit 2
    fi
fi
echo "qiskit-ibm-runtime $CLIENT_VERSION"
"$CLIENT_VENV/bin/pip" install -q "qiskit-ibm-runtime==$CLIENT_VERSION" "pytest>=9.1" \
    pytest-timeout responses simplejson
"$CLIENT_VENV/bin/pip" download -q --no-deps --no-binary :all: \
    "qiskit-ibm-runtime==$CLIENT_VERSION" -d "$WORK/sdist"
tar xzf "$WORK/sdist/qiskit_ibm_runtime-$CLIENT_VERSION.tar.gz" -C "$WORK"
SRC="$WORK/qiskit_ibm_runtime-$CLIENT_VERSION"
if [ ! -d "$SRC/test/integration" ]; then
    echo "the sdist of qiskit-ibm-runtime $CLIENT_VERSION has no test/integration" >&2
    exit 2
fi
# Test the installed client, not the sdist's copy of its source.
rm -rf "$SRC/qiskit_ibm_runtime"

# --- a scratch qdash ----------------------------------------------------------------
PORT="${PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
export DATABASE_URL="sqlite:///$WORK/db.sqlite3"
export REDIS_URL=""
(cd "$ROOT" && exec "$PY" manage.py serve --demo --port "$PORT") >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
    if curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/v1/openapi.json"; then break; fi
    if ! kill -0 "$SERVER" 2>/dev/null; then cat "$WORK/server.log" >&2; exit 1; fi
    sleep 0.5
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/v1/openapi.json"
# The `backend_test` fixture of the suite uses a backend whose name starts with test_eagle.
# A job holds it for 1 s, a small job's overhead on real hardware: the timeout tests need a
# job that is still running after their 0.1 s.
(cd "$ROOT" && "$PY" manage.py shell -c "
from datetime import timedelta
from scheduler.models import Backend
Backend.objects.get_or_create(name='test_eagle_qdash', defaults=dict(num_qubits=27,
    job_overhead=timedelta(seconds=1), shot_time=timedelta(microseconds=10),
    description='backend_test of the client suite'))")
TOKEN_JSON="$(cd "$ROOT" && "$PY" manage.py issue_token --user alice --port "$PORT" --json)"
read -r TOKEN URL IAM CRN < <(printf '%s' "$TOKEN_JSON" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(d["token"], d["url"], d["iam_url"], d["instances"][0]["crn"])')

export QISKIT_IBM_TOKEN="$TOKEN" QISKIT_IBM_URL="$URL" QISKIT_IBM_INSTANCE="$CRN"
export QISKIT_IBM_QPU="$QPU" IAM_URL="$IAM" QISKIT_FUNCTIONS_EXPERIMENTAL=1
export QISKIT_IBM_CHANNEL=ibm_quantum_platform
echo "qdash on $URL, instance $CRN, qpu $QPU"

# --- run ----------------------------------------------------------------------------
PATHS=()
for module in $MODULES; do PATHS+=("test/integration/$module.py"); done
set +e
(cd "$SRC" && timeout "$SUITE_TIMEOUT" "$CLIENT_VENV/bin/python" -m pytest "${PATHS[@]}" \
    -p no:cacheprovider -v -rfE --timeout "$TEST_TIMEOUT" --junitxml "$WORK/junit.xml" \
    >"$WORK/pytest.log" 2>&1)
STATUS=$?
set -e
[ "$STATUS" -eq 124 ] && echo "the suite hit SUITE_TIMEOUT ($SUITE_TIMEOUT s)"

# --- summary ------------------------------------------------------------------------
grep -E '^test/.* (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)' "$WORK/pytest.log" \
    | sed -E 's/ +\[ *[0-9]+%\]$//' || true
for outcome in PASSED FAILED ERROR SKIPPED; do
    printf '%s %s  ' "$outcome" "$(grep -cE "^test/.* $outcome" "$WORK/pytest.log" || true)"
done
echo
echo "pytest log: $WORK/pytest.log   server log: $WORK/server.log"
exit "$STATUS"

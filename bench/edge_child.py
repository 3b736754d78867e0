"""`python -m bench.edge_child profile`: where an API call's server time goes.

On the database DATABASE_URL names (prepared by `bench.engine_child prepare`),
it sends `POST /jobs` with the real client's payload and `GET
/backends/{name}/status` through Django's test client (the whole middleware
chain, the token check, the decoding sandbox), first a few untimed, then
`--reps` of each under cProfile. It writes the top functions by cumulative and
by own time, per call, and the queries each call made, to the JSON file given by
--result.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import time
from pathlib import Path
from typing import Any

import django

TOP = 25
# Functions of qdash and of what an API call talks to: the decoding sandbox's pool,
# Redis, PostgreSQL's driver and pool, JWT.
OURS = r"(/scheduler/|/qdash/|/pebble/|/redis/|/psycopg_pool/|/jwt/|/django_ratelimit/)"
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_child")
    parser.add_argument("command", choices=["profile"])
    parser.add_argument("--key", required=True)
    parser.add_argument("--crn", required=True)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
    django.setup()
    Path(args.result).write_text(json.dumps(_profile(args.key, args.crn, args.reps)))


def _profile(key: str, crn: str, reps: int) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client

    from bench.engine_child import client_params

    client = Client()
    answer = client.post("/identity/token", {"apikey": key})
    token = answer.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Service-CRN": crn}
    params = client_params()
    body = json.dumps({"program_id": "sampler", "backend": "qpu_00", "hgp": None, "params": params})
    shots = iter(range(1001, 10**6))

    def new_input() -> str:
        """The same circuit with another shots count: checked afresh, in the sandbox."""
        pub = [*params["pubs"][0][:2], next(shots)]
        fresh = {**params, "pubs": [pub]}
        return json.dumps(
            {"program_id": "sampler", "backend": "qpu_00", "hgp": None, "params": fresh}
        )

    calls = {
        "POST /jobs (the same input)": lambda: client.post(
            "/api/v1/jobs", body, content_type="application/json", headers=headers
        ),
        "POST /jobs (a new input)": lambda: client.post(
            "/api/v1/jobs", new_input(), content_type="application/json", headers=headers
        ),
        "GET /backends/{name}/status": lambda: client.get(
            "/api/v1/backends/qpu_00/status", headers=headers
        ),
    }
    out: dict[str, Any] = {}
    for name, call in calls.items():
        for _ in range(10):  # connections, the sandbox's workers, caches
            status = call().status_code
            assert status in (200, 201), (name, status)
        queries: list[str] = []
        with connection.execute_wrapper(_recorder(queries)):
            call()
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for _ in range(reps):
            call()
        profiler.disable()
        wall_ms = (time.perf_counter() - start) * 1000 / reps
        out[name] = {
            "ms_per_call": wall_ms,
            "queries": queries,
            "top": _top(profiler, reps),
        }
    return out


def _recorder(queries: list[str]) -> Any:
    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(" ".join(sql.split())[:160])
        return execute(sql, params, many, context)

    return record


def _top(profiler: cProfile.Profile, reps: int) -> str:
    """qdash's own functions and its clients' (the sandbox, Redis, PostgreSQL, JWT) by
    cumulative time, then everything by own time."""
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    text.write(f"### qdash and its clients by cumulative time ({reps} calls)\n")
    stats.sort_stats("cumulative").print_stats(OURS, TOP)
    text.write(f"### everything by own time ({reps} calls)\n")
    stats.sort_stats("tottime").print_stats(TOP)
    out = text.getvalue().replace(str(ROOT) + "/", "")
    return re.sub(r"/\S*/site-packages/", "", out)


if __name__ == "__main__":
    main()

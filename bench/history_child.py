"""The history benchmark's child (`bench.history`): on the scratch PostgreSQL database
DATABASE_URL names, generate finished jobs server-side, build the rollups, time the
pages, prune, and answer in JSON. Run by `python -m bench --history`, not by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")

HUBS, PROJECTS, BACKENDS = 4, 5, 8  # 20 project instances, one researcher each
SPAN_DAYS = 365  # the history spans a year, ending an hour ago
CHUNK = 500_000  # rows per INSERT ... SELECT FROM generate_series


def _setup(now: datetime) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from scheduler import models
    from scheduler.auth_tokens import tokens_issue
    from scheduler.services import instances_ensure

    backends = [
        models.Backend.objects.create(
            name=f"sim_{i}",
            job_overhead=timedelta(seconds=1),
            shot_time=timedelta(microseconds=100),
        )
        for i in range(BACKENDS)
    ]
    users, instances = [], []
    for h in range(HUBS):
        for p in range(PROJECTS):
            node = instances_ensure(path=f"hub{h}/group/p{p}")
            user = get_user_model().objects.create_user(f"r{h}{p}", password="pw")
            node.members.add(user)
            users.append(user)
            instances.append(node)
    staff = get_user_model().objects.create_user("operator", password="pw", is_staff=True)
    _, key = tokens_issue(user=users[0])
    return {
        "backends": [b.pk for b in backends],
        "instances": [i.pk for i in instances],
        "users": [u.pk for u in users],
        "staff": staff,
        "key": key,
        "crn_path": instances[0].path,
    }


JOBS_SQL = """
INSERT INTO scheduler_job (uid, backend_id, instance_id, owner_id, program_id, status, lane,
  error, error_message, submitted_at, started_at, ended_at, params, result, tags, private,
  circuit_keys, cached_circuits, cache_saved)
SELECT 'h' || g, b[1 + floor(random() * cardinality(b))::int], i[1 + mod(g, cardinality(i))],
  u[1 + mod(g, cardinality(u))], 'sampler', st, 'fair_share', '', '',
  e - make_interval(secs => w + r), CASE WHEN st = 'Cancelled' AND mod(g, 2) = 0 THEN NULL
  ELSE e - make_interval(secs => r) END, e,
  '{"pubs": [["OPENQASM 3.0; qubit[2] q; h q[0]; cx q[0], q[1];", null, 100]]}'::jsonb,
  CASE WHEN st = 'Completed' THEN '{"results": [{"data": {"c": {"00": 51, "11": 49}}}]}'::jsonb
  END, '[]'::jsonb, false, '[]'::jsonb, 0, interval '0'
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g,
  LATERAL (SELECT %(start)s::timestamptz + make_interval(secs => %(span)s * g::float8 / %(n)s) AS e,
    (random() * 600)::float8 * (random() ^ 3) AS w, 1 + random() * 120 AS r,
    CASE WHEN mod(g, 25) = 0 THEN 'Failed' WHEN mod(g, 25) = 1 THEN 'Cancelled'
      ELSE 'Completed' END AS st
  ) AS v,
  (SELECT %(b)s::int[] AS b, %(i)s::int[] AS i, %(u)s::int[] AS u) AS ids
"""
CHARGES_SQL = """
INSERT INTO scheduler_usagecharge (instance_id, kind, microseconds, ended_at, job_id)
SELECT instance_id, 'run', (extract(epoch FROM ended_at - started_at) * 1e6)::bigint, ended_at, id
FROM scheduler_job WHERE id BETWEEN %(lo)s AND %(hi)s AND started_at IS NOT NULL
"""
EVENTS_SQL = """
INSERT INTO scheduler_event (at, kind, job_id, backend_id, detail)
SELECT t.at, t.kind, id, backend_id, '{}'::jsonb FROM scheduler_job,
  LATERAL (VALUES (started_at, 'job_started'), (ended_at, 'job_ended')) AS t(at, kind)
WHERE id BETWEEN %(lo)s AND %(hi)s AND t.at IS NOT NULL
"""


def _generate(n: int, ids: dict[str, Any], now: datetime) -> dict[str, float]:
    from django.db import connection

    start = now - timedelta(days=SPAN_DAYS)
    span = (now - timedelta(hours=1) - start).total_seconds()
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        for lo in range(1, n + 1, CHUNK):
            hi = min(n, lo + CHUNK - 1)
            args = {"lo": lo, "hi": hi, "n": n, "start": start, "span": span}
            cursor.execute(
                JOBS_SQL, {**args, "b": ids["backends"], "i": ids["instances"], "u": ids["users"]}
            )
            cursor.execute(
                "SELECT min(id), max(id) FROM scheduler_job WHERE uid = ANY(%s)",
                [[f"h{lo}", f"h{hi}"]],
            )
            first, last = cursor.fetchone()
            cursor.execute(CHARGES_SQL, {"lo": first, "hi": last})
            cursor.execute(EVENTS_SQL, {"lo": first, "hi": last})
            print(
                f"  generated {hi:,} of {n:,} jobs ({time.perf_counter() - t0:.0f} s)", flush=True
            )
        generated = time.perf_counter() - t0
        cursor.execute("VACUUM ANALYZE")  # as autovacuum leaves a table: visibility map set
    return {"generate_s": generated, "analyze_s": time.perf_counter() - t0 - generated}


def _size() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return int(cursor.fetchone()[0])


def _time(get: Any, reps: int) -> list[float]:
    get()  # warm: the first request loads templates and caches
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        answer = get()
        out.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, answer.status_code
    return out


def _pages(ids: dict[str, Any], reps: int, now: datetime) -> dict[str, list[float]]:
    from django.test import Client

    from scheduler.api.auth import instance_crn

    staff = Client()
    staff.force_login(ids["staff"])
    api = {"Authorization": f"Bearer {ids['key']}", "Service-CRN": instance_crn(ids["crn_path"])}
    htmx = {"HX-Request": "true"}
    today = now.date()
    usage = {"since": (today - timedelta(days=89)).isoformat(), "until": today.isoformat()}
    pages = {
        "dashboard": lambda: staff.get("/"),
        "jobs: newest page (job table)": lambda: staff.get("/", headers=htmx),
        "jobs: filtered page (job table, status + backend)": lambda: staff.get(
            "/", {"status": "Failed", "backend": "sim_3"}, headers=htmx
        ),
        "jobs: newest page (API GET /jobs)": lambda: staff.get("/api/v1/jobs", headers=api),
        "jobs: filtered page (API, backend + pending=false)": lambda: staff.get(
            "/api/v1/jobs", {"backend": "sim_3", "pending": "false"}, headers=api
        ),
        "usage: 90 days by day": lambda: staff.get("/usage", {**usage, "by": "day"}),
        "usage: 90 days CSV": lambda: staff.get("/usage.csv", {**usage, "by": "day"}),
        "fair-share": lambda: staff.get("/fair-share"),
    }
    out = {}
    for name, get in pages.items():
        out[name] = _time(get, reps)
        print(f"  {name}: median {statistics.median(out[name]):.0f} ms", flush=True)
    return out


def _counts() -> dict[str, int]:
    from scheduler import models

    return {
        "jobs": models.Job.objects.count(),
        "events": models.Event.objects.count(),
        "charges": models.UsageCharge.objects.count(),
        "rollup_rows": models.UsageDay.objects.count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--prune-days", type=int, default=90)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from scheduler.history import prune, rollups

    call_command("migrate", interactive=False, verbosity=0)
    now = datetime.now(UTC)
    ids = _setup(now)
    result: dict[str, Any] = {"jobs": args.jobs, "span_days": SPAN_DAYS}
    print("  baseline: the pages with no history", flush=True)
    result["pages_empty"] = _pages(ids, args.reps, now)
    result |= _generate(args.jobs, ids, now)
    result["counts"] = _counts()
    t0 = time.perf_counter()
    result["days_rolled"] = rollups.roll(now)
    result["rollup_s"] = time.perf_counter() - t0
    result["counts"]["rollup_rows"] = _counts()["rollup_rows"]
    print(f"  rolled {result['days_rolled']} days in {result['rollup_s']:.1f} s", flush=True)
    result["pages"] = _pages(ids, args.reps, now)
    result["size_before"] = _size()
    t0 = time.perf_counter()
    pruned = prune.prune(
        older_than=timedelta(days=args.prune_days), archive_dir=args.archive, now=now, batch=5_000
    )
    result["prune"] = {
        "seconds": time.perf_counter() - t0,
        "jobs": pruned.jobs,
        "events": pruned.events,
        "charges": pruned.charges,
        "kept_charges": pruned.kept_charges,
        "archive_bytes": pruned.archive.stat().st_size if pruned.archive else 0,
        "days": args.prune_days,
    }
    print(f"  pruned {pruned.jobs:,} jobs in {result['prune']['seconds']:.0f} s", flush=True)
    result["size_after_prune"] = _size()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM FULL scheduler_job, scheduler_event, scheduler_usagecharge")
        # VACUUM FULL rewrites the tables without a visibility map: until a plain VACUUM
        # (autovacuum's, or the operator's, docs/history.md) every index-only count
        # reads the table too.
        cursor.execute("VACUUM ANALYZE scheduler_job, scheduler_event, scheduler_usagecharge")
    result["size_after_vacuum"] = _size()
    result["counts_after"] = _counts()
    result["pages_after"] = _pages(ids, args.reps, now)
    args.result.write_text(json.dumps(result))


if __name__ == "__main__":
    main()

"""The Django side of `python -m bench --live`, in its own interpreter (started by `bench.live`).

Subcommands (the database and channel layer come from DATABASE_URL and REDIS_URL):

- `setup --result R`: migrate, `demo_load()`, and a logged-in session of the staff
  user `admin`; writes {"sessionid": ...}.
- `changes`: for every line read on stdin, submit one job through
  `scheduler.submission.jobs_submit` and print {"uid", "committed"} (wall clock,
  taken once the submission is stored; the leader, another process, then steps).
- `pages --jobs N --reps R --result R`: fill a scratch database with N finished
  jobs (plus their events and usage charges) and a few hundred queued/running
  ones, then time the dashboard, its job-table partial and the fair-share page
  with the Django test client; writes the timings, the queries and, when asked,
  cProfile's top functions as JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import random
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

from .core import ROOT

HISTORY_DAYS = 7
SESSION_EVERY = 10  # one finished job in this many ran in a session
QUEUED = 300  # queued jobs next to the history (running: one per backend)
BATCH = 5_000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live_child")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup")
    setup.add_argument("--result", required=True)
    sub.add_parser("changes")
    pages = sub.add_parser("pages")
    pages.add_argument("--jobs", type=int, required=True)
    pages.add_argument("--reps", type=int, default=20)
    pages.add_argument("--seed", type=int, default=0)
    pages.add_argument("--profile", action="store_true")
    pages.add_argument("--result", required=True)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
    django.setup()
    if args.command == "setup":
        Path(args.result).write_text(json.dumps(_setup()))
    elif args.command == "changes":
        _changes()
    else:
        result = _pages(args.jobs, args.reps, args.seed, args.profile)
        Path(args.result).write_text(json.dumps(result))


# ------------------------------------------------------------------ live
def _setup() -> dict[str, Any]:
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from scheduler.demo import demo_load

    call_command("migrate", interactive=False, verbosity=0)
    demo_load()
    user = get_user_model().objects.get(username="admin")
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return {"sessionid": store.session_key}


def _changes() -> None:
    """Submit a job per line of stdin; answer its id and when its submission committed.

    The scheduler leader (another process) applies it and the dashboards hear of
    it: the latency runs from the web process's commit to a client's message.
    """
    from django.contrib.auth import get_user_model

    from scheduler import circuits, models
    from scheduler.submission import jobs_submit

    owner = get_user_model().objects.get(username="admin")
    backend = models.Backend.objects.get(name="sim_lima")
    instance = models.Instance.objects.get(path="ibm-q/open/main")
    params = circuits.sampler_params([circuits.ghz(2)], 100)
    for _ in sys.stdin:
        job = jobs_submit(
            owner=owner, backend=backend, instance=instance, program_id="sampler", params=params
        ).job
        print(json.dumps({"uid": job.uid, "committed": time.time()}), flush=True)


# ----------------------------------------------------------------- pages
def _pages(n_jobs: int, reps: int, seed: int, profile: bool) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases
    from django.utils import timezone

    from scheduler.engine import eager

    test = settings.DATABASES["default"].setdefault("TEST", {})
    if connection.vendor != "sqlite":
        test["NAME"] = f"qdash_bench_live_{os.getpid()}"
    # SQLite: the file DATABASE_URL names (bench.live points it at a scratch file).
    old = None if connection.vendor == "sqlite" else _setup_pg(setup_databases)
    try:
        if old is None:
            from django.core.management import call_command

            call_command("migrate", interactive=False, verbosity=0)
        start = time.perf_counter()
        counts = _fill(n_jobs, seed)
        eager.step(at=timezone.now())  # the leader's samples and plan for the pages
        fill_s = time.perf_counter() - start
        timings = _time_pages(reps, profile)
        return {"vendor": connection.vendor, "fill_s": fill_s, "counts": counts, **timings}
    finally:
        if old is not None:
            teardown_databases(old, verbosity=0)


def _setup_pg(setup_databases: Any) -> Any:
    return setup_databases(verbosity=0, interactive=False, aliases={"default": 1})


def _fill(n_jobs: int, seed: int) -> dict[str, int]:
    """History as the engine writes it, by bulk_create: finished jobs, events, charges."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from scheduler import models
    from scheduler.demo import demo_load
    from scheduler.submission import new_uid

    rng = random.Random(seed)
    now = timezone.now()
    demo_load(now=now)
    backends = list(models.Backend.objects.all())
    leaves = list(models.Instance.objects.filter(members__isnull=False).distinct())
    users = {node.pk: list(node.members.all()) for node in leaves}
    owner_default = get_user_model().objects.get(username="admin")
    span = timedelta(days=HISTORY_DAYS).total_seconds()
    statuses = [(models.Job.Status.COMPLETED, 90), (models.Job.Status.FAILED, 5)]
    statuses.append((models.Job.Status.CANCELLED, 5))
    status_names = [s for s, _ in statuses]
    status_weights = [w for _, w in statuses]
    counts: Counter[str] = Counter()
    params = {"pubs": [], "version": 2}

    with transaction.atomic():
        # Sessions for one job in SESSION_EVERY, ten jobs each, closed.
        n_sessions = max(1, n_jobs // SESSION_EVERY // 10)
        pick = {"leaves": leaves, "backends": backends, "users": users, "owner": owner_default}
        sessions = _closed_sessions(rng, n_sessions, span, now, pick)
        counts["sessions"] = len(sessions)

        for offset in range(0, n_jobs, BATCH):
            jobs = []
            for _ in range(min(BATCH, n_jobs - offset)):
                session = rng.choice(sessions) if rng.random() < 1 / SESSION_EVERY else None
                node = session.instance if session else rng.choice(leaves)
                backend = session.backend if session else rng.choice(backends)
                submitted = now - timedelta(seconds=rng.uniform(300, span))
                status = rng.choices(status_names, status_weights)[0]
                ran = status != models.Job.Status.CANCELLED or rng.random() < 0.3
                started = submitted + timedelta(seconds=rng.uniform(1, 120)) if ran else None
                duration = timedelta(seconds=rng.uniform(2, 30))
                ended = (started + duration) if started else submitted + timedelta(seconds=30)
                jobs.append(
                    models.Job(
                        uid=new_uid(),
                        backend=backend,
                        instance=node,
                        session=session,
                        owner=rng.choice(users[node.pk] or [owner_default]),
                        status=status,
                        lane="session" if session else ("fair_share" if ran else ""),
                        submitted_at=submitted,
                        started_at=started,
                        ended_at=ended,
                        duration=duration if ran else None,
                        expected_duration=duration,
                        params=params,
                        result={"results": []} if status == models.Job.Status.COMPLETED else None,
                    )
                )
            models.Job.objects.bulk_create(jobs, batch_size=BATCH)
            counts["finished jobs"] += len(jobs)
            _history(jobs, counts)
        _live_jobs(rng, now, backends, leaves, users, owner_default, params, counts)
    return dict(counts)


def _closed_sessions(
    rng: random.Random, n: int, span: float, now: Any, pick: dict[str, Any]
) -> list[Any]:
    """`n` closed sessions created up to `span` seconds before `now`, stored; `pick` holds
    the backends, the instances and their members to draw from."""
    from scheduler import models
    from scheduler.submission import new_uid

    sessions = []
    for _ in range(n):
        node = rng.choice(pick["leaves"])
        created = now - timedelta(seconds=rng.uniform(600, span))
        sessions.append(
            models.Session(
                uid=new_uid(),
                backend=rng.choice(pick["backends"]),
                instance=node,
                owner=rng.choice(pick["users"][node.pk] or [pick["owner"]]),
                state=models.Session.State.CLOSED,
                accepting_jobs=False,
                created_at=created,
                interactive_ttl=timedelta(seconds=60),
                closed_reason="closed",
            )
        )
    models.Session.objects.bulk_create(sessions, batch_size=BATCH)
    return list(models.Session.objects.all())


def _history(jobs: list[Any], counts: Counter[str]) -> None:
    """The events and charges the engine would have written for these (now stored) jobs."""
    from scheduler import models

    events = []
    charges = []
    for job in jobs:
        common = {"job_id": job.pk, "session_id": job.session_id, "backend_id": job.backend_id}
        events.append(models.Event(at=job.submitted_at, kind="job_submitted", **common))
        if job.started_at is not None:
            events.append(
                models.Event(
                    at=job.started_at, kind="job_started", detail={"lane": job.lane}, **common
                )
            )
            charges.append(
                models.UsageCharge(
                    instance_id=job.instance_id,
                    kind=models.UsageCharge.Kind.RUN,
                    microseconds=int(job.duration.total_seconds() * 1e6),
                    ended_at=job.ended_at,
                    job_id=job.pk,
                )
            )
        events.append(
            models.Event(at=job.ended_at, kind="job_ended", detail={"status": job.status}, **common)
        )
    models.Event.objects.bulk_create(events, batch_size=BATCH)
    models.UsageCharge.objects.bulk_create(charges, batch_size=BATCH)
    counts["events"] += len(events)
    counts["usage charges"] += len(charges)


def _live_jobs(
    rng: random.Random,
    now: Any,
    backends: list[Any],
    leaves: list[Any],
    users: dict[int, list[Any]],
    owner_default: Any,
    params: dict[str, Any],
    counts: Counter[str],
) -> None:
    """QUEUED queued jobs in the last half hour, and one running job per backend."""
    from scheduler import models
    from scheduler.submission import new_uid

    jobs = []
    for index in range(QUEUED + len(backends)):
        running = index < len(backends)
        node = rng.choice(leaves)
        submitted = now - timedelta(seconds=rng.uniform(5, 1800))
        jobs.append(
            models.Job(
                uid=new_uid(),
                backend=backends[index] if running else rng.choice(backends),
                instance=node,
                owner=rng.choice(users[node.pk] or [owner_default]),
                status=models.Job.Status.RUNNING if running else models.Job.Status.QUEUED,
                lane="fair_share" if running else "",
                submitted_at=submitted,
                started_at=now - timedelta(seconds=2) if running else None,
                runtime_limit=timedelta(hours=3) if running else None,
                expected_duration=timedelta(seconds=rng.uniform(2, 30)),
                params=params,
            )
        )
    models.Job.objects.bulk_create(jobs)
    events = []
    for job in jobs:
        common = {"job_id": job.pk, "backend_id": job.backend_id}
        events.append(models.Event(at=job.submitted_at, kind="job_submitted", **common))
        if job.started_at is not None:
            events.append(models.Event(at=job.started_at, kind="job_started", **common))
    models.Event.objects.bulk_create(events)
    counts["queued jobs"] += QUEUED
    counts["running jobs"] += len(backends)
    counts["events"] += len(events)


PAGES = [
    # label, path, extra request headers
    ("dashboard `/`", "/", {}),
    ("job table partial (htmx `/`)", "/", {"HTTP_HX_REQUEST": "true"}),
    ("fair-share `/fair-share`", "/fair-share", {}),
]


def _time_pages(reps: int, profile: bool) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from scheduler import models, selectors
    from scheduler.consumers.pages import render_page
    from scheduler.policy import model as m

    user = get_user_model().objects.get(username="admin")
    client = Client()
    client.force_login(user)
    filters = dict.fromkeys(selectors.JOB_FILTERS, "")
    backend = models.Backend.objects.first()
    job = models.Job.objects.filter(status=m.QUEUED).first()
    change = {
        "jobs": [job.uid if job else ""],
        "sessions": [],
        "backends": [backend.name if backend else ""],
        "at": None,
    }

    def ws_render(change: dict[str, Any] | None) -> Any:
        return lambda: render_page(
            page="dashboard", uid="", user=user, filters=filters, change=change
        )

    targets: list[tuple[str, Any]] = [
        (label, _getter(client, path, headers)) for label, path, headers in PAGES
    ]
    targets += [
        ("websocket connect render (`render_page`, all fragments)", ws_render(None)),
        ("websocket render of one job change", ws_render(change)),
    ]
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    rows: list[dict[str, Any]] = []
    for label, call in targets:
        try:
            call()  # warm-up: template loading, first connection
        except Exception as error:  # noqa: BLE001 - report it, time the other pages
            rows.append({"label": label, "error": f"{type(error).__name__}: {error}"})
            continue
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        with CaptureQueriesContext(connection) as captured:
            call()
        captured_ms = [(q["sql"], float(q["time"] or 0) * 1000) for q in captured]
        queries = [_replay(sql, ms) for sql, ms in captured_ms]
        row: dict[str, Any] = {"label": label, "ms": times, "queries": queries}
        if profile:
            row["profile"] = _profile(call)
        rows.append(row)
    return {"pages": rows}


def _replay(sql: str, execute_ms: float) -> tuple[str, float, float | None, int | None]:
    """(SQL, execute ms as captured, execute + fetch-all ms of a replay, rows).

    The captured time stops when `execute` returns; a query's rows are fetched
    later, while the queryset is iterated, so a replay times both.
    """
    from django.db import connection

    if not sql.lstrip().upper().startswith("SELECT"):
        return sql, execute_ms, None, None
    try:
        with connection.cursor() as cursor:
            start = time.perf_counter()
            cursor.execute(sql)
            rows = len(cursor.fetchall())
            return sql, execute_ms, (time.perf_counter() - start) * 1000, rows
    except Exception:  # noqa: BLE001 - a captured string is not always valid SQL again
        return sql, execute_ms, None, None


def _getter(client: Any, path: str, headers: dict[str, str]) -> Any:
    def get() -> int:
        response = client.get(path, **headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        return len(response.content)

    return get


def _profile(call: Any, limit: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        call()
    profiler.disable()
    out = io.StringIO()
    for order in ("cumulative", "tottime"):
        out.write(f"### top {limit} by {order} (3 calls)\n")
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(limit)
    out.write(f"### top {limit} scheduler functions by cumulative (3 calls)\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"scheduler/", limit)
    return out.getvalue().replace(str(ROOT) + "/", "")


if __name__ == "__main__":
    main()

"""`python -m bench.engine_child CMD`: the Django side of `python -m bench --engine`.

Each command works on the database DATABASE_URL names (a scratch one bench.engine
made) and answers in the JSON file given by --result.

- prepare: migrate; 8 backends, the bench instance tree, a user with an API key
  and one long job running on every backend, so nothing queued starts;
- fill: queue jobs until N are queued (the leader's own incremental writes);
- steps: load a leader, then time steps with nothing due;
- pages: server time of the dashboard, the newest (deepest) job's page and its
  metrics, in-process with Django's test client;
- dispatch: zero-length jobs through a leader and a no-op executor, as fast as it goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

from .generate import BACKENDS, instances, shares

FILL_BATCH = 5_000
RUNNING_HOURS = 10  # the job each backend runs while the queue is measured
OWNERS = 1_000  # researchers the queued jobs belong to (100 each at 100k queued)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_child")
    parser.add_argument("command", choices=["prepare", "fill", "steps", "pages", "dispatch"])
    parser.add_argument("--queued", type=int, default=0)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
    django.setup()
    answer = {
        "prepare": lambda: _prepare(),
        "fill": lambda: _fill(args.queued),
        "steps": lambda: _steps(args.reps),
        "pages": lambda: _pages(args.reps),
        "dispatch": lambda: _dispatch(args.jobs),
    }[args.command]()
    Path(args.result).write_text(json.dumps(answer))


def client_params() -> dict[str, Any]:
    """The `params` the real client sends for a transpiled Bell circuit, 1000 shots."""
    from qiskit import QuantumCircuit, transpile

    from scheduler import circuits

    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    isa = transpile(bell, basis_gates=["rz", "sx", "x", "cx"], optimization_level=1)
    return circuits.sampler_params([isa], 1000)


# ------------------------------------------------------------------ set-up
def _prepare() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from scheduler import models, services
    from scheduler.api.auth import instance_crn
    from scheduler.auth_tokens import tokens_issue
    from scheduler.clock import to_ticks
    from scheduler.engine.step import Leader

    call_command("migrate", interactive=False, verbosity=0)
    for name in BACKENDS:
        models.Backend.objects.create(
            name=name,
            num_qubits=27,
            job_overhead=timedelta(seconds=1),
            shot_time=timedelta(microseconds=100),
        )
    for node, share in shares().items():
        services.instances_ensure(path=node)
        models.Instance.objects.filter(path=node).update(share=share)
    user = get_user_model().objects.create_user("bench", password="bench", is_staff=True)
    paths = [path for path, _ in instances()]
    for path in paths:
        services.instances_ensure(path=path).members.add(user)
    researchers = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"researcher{n:04d}") for n in range(OWNERS)]
    )
    # Researcher n owns the queued jobs of project n mod 20 (see _fill).
    nodes = {path: services.instances_ensure(path=path) for path in paths}
    members = models.Instance.members.through
    members.objects.bulk_create(
        [
            members(instance_id=nodes[paths[n % len(paths)]].pk, user_id=user.pk)
            for n, user in enumerate(researchers)
        ]
    )
    _, key = tokens_issue(user=user, name="bench")
    now = to_ticks(timezone.now())
    leader = Leader()
    actions = [_submit(f"run_{name}", paths[0], name, RUNNING_HOURS * 3600) for name in BACKENDS]
    leader.step(now, [(now, actions)], job_fields=_fields(user.pk, actions))
    return {"key": key, "crn": instance_crn(paths[0]), "paths": paths}


def _submit(uid: str, instance: str, backend: str, seconds: float) -> Any:
    from scheduler.policy import model as m

    return m.Submit(
        job=uid, instance=instance, backend=backend, expected=round(seconds * 1_000_000)
    )


def _fields(owner: int, actions: list[Any]) -> dict[str, dict[str, Any]]:
    params = client_params()
    return {a.job: {"owner_id": owner, "program_id": "sampler", "params": params} for a in actions}


def _fill(queued: int) -> dict[str, Any]:
    """Queue jobs (round-robin over backends and instances) until `queued` wait."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from scheduler import models, plans
    from scheduler.clock import to_ticks
    from scheduler.engine.step import Leader
    from scheduler.policy import make_plan

    owners = list(
        get_user_model()
        .objects.filter(username__startswith="researcher")
        .values_list("pk", flat=True)
    )
    paths = [path for path, _ in instances()]
    have = models.Job.objects.filter(status="Queued").count()
    start = time.perf_counter()
    leader = Leader()
    made = models.Job.objects.count()
    while have < queued:
        n = min(FILL_BATCH, queued - have)
        actions = [
            _submit(
                f"fill{made + k:07d}",
                paths[(made + k) % len(paths)],
                BACKENDS[(made + k) % len(BACKENDS)],
                1,
            )
            for k in range(n)
        ]
        now = to_ticks(timezone.now())
        fields = _fields(0, actions)
        for k, action in enumerate(actions):
            fields[action.job]["owner_id"] = owners[(made + k) % len(owners)]
        leader.step(now, [(now, actions)], job_fields=fields)
        have += n
        made += n
    filled = time.perf_counter() - start
    assert leader.policy is not None
    start = time.perf_counter()
    plan = make_plan(leader.policy, to_ticks(timezone.now()))
    planned = time.perf_counter() - start
    plans.Publisher().publish(plan)
    published = time.perf_counter() - start - planned
    replayed, incremental = _incremental(leader.policy, paths[0])
    return {
        "queued": models.Job.objects.filter(status="Queued").count(),
        "fill_s": filled,
        "plan_s": planned,
        "publish_s": published,
        "incremental_backends": replayed,
        "incremental_s": incremental,
    }


def _incremental(policy: Any, instance: str, reps: int = 5) -> tuple[int, float]:
    """The plan after one submission to qpu_00, made by the leader's incremental planner
    (in memory only: the rows stay as they are): backends replayed, median seconds."""
    from django.utils import timezone

    from scheduler.clock import to_ticks
    from scheduler.policy import model as m
    from scheduler.policy.incremental import Changes, PlanCache

    cache = PlanCache()
    cache.make(policy, to_ticks(timezone.now()), Changes())
    times, replayed = [], 0
    for n in range(reps):
        now = to_ticks(timezone.now())
        changes = Changes(everything=False)
        submit = m.Submit(
            job=f"bench-plan-{n}", instance=instance, backend=BACKENDS[0], expected=1_100_000
        )
        changes.note(policy.run_instant(max(now, policy.now), [submit]))
        start = time.perf_counter()
        _, update = cache.make(policy, now, changes)
        times.append(time.perf_counter() - start)
        replayed = max(replayed, len(policy.backends) if update.full else len(update.backends))
    return replayed, statistics.median(times)


# ----------------------------------------------------------------- timings
def _steps(reps: int) -> dict[str, Any]:
    from django.utils import timezone

    from scheduler.clock import to_ticks
    from scheduler.engine.step import Leader

    leader = Leader()
    start = time.perf_counter()
    leader.step(to_ticks(timezone.now()))
    load_s = time.perf_counter() - start
    times = []
    for _ in range(reps):
        now = to_ticks(timezone.now())
        start = time.perf_counter()
        report = leader.step(now)
        times.append((time.perf_counter() - start) * 1000)
        assert not report.instant.events, "a step with nothing due changed something"
    return {"load_s": load_s, "step_ms": times, "loads": leader.loads}


def _pages(reps: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from scheduler import models
    from scheduler.api.auth import instance_crn
    from scheduler.auth_tokens import tokens_issue

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    deepest = (
        models.Job.objects.filter(status="Queued")
        .select_related("owner", "instance")
        .order_by("-submitted_at", "-id")
        .first()
    )
    assert deepest is not None
    _, key = tokens_issue(user=deepest.owner)  # the metrics are the owner's to read
    api = {
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_SERVICE_CRN": instance_crn(deepest.instance.path),
    }
    pages = {
        "dashboard `/`": ("/", {}),
        "deepest job's page": (f"/jobs/{deepest.uid}", {}),
        "its `/jobs/{id}/metrics`": (f"/api/v1/jobs/{deepest.uid}/metrics", api),
        "fair-share `/fair-share`": ("/fair-share", {}),
    }
    timings: dict[str, Any] = {}
    for label, (path, headers) in pages.items():
        response = client.get(path, **headers)  # warm
        assert response.status_code == 200, (path, response.status_code)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            response = client.get(path, **headers)
            times.append((time.perf_counter() - start) * 1000)
        timings[label] = times
    metrics = json.loads(client.get(f"/api/v1/jobs/{deepest.uid}/metrics", **api).content)
    return {"pages": timings, "deepest_position": metrics.get("position_in_queue")}


def _dispatch(jobs: int) -> dict[str, Any]:
    """Zero-length jobs through the leader and a no-op executor: starts plus finishes per s."""
    from django.core.management import call_command
    from django.utils import timezone

    from scheduler import models
    from scheduler.clock import to_ticks
    from scheduler.engine.loop import Scheduler
    from scheduler.engine.step import Leader

    call_command("migrate", interactive=False, verbosity=0)
    for name in BACKENDS:  # paused while the queue fills
        models.Backend.objects.create(
            name=name, status="paused", job_overhead=timedelta(0), shot_time=timedelta(0)
        )
    paths = [path for path, _ in instances()]
    now = to_ticks(timezone.now())
    leader = Leader()
    for offset in range(0, jobs, FILL_BATCH):
        actions = [
            _submit(f"z{k:07d}", paths[k % len(paths)], BACKENDS[k % len(BACKENDS)], 0)
            for k in range(offset, min(jobs, offset + FILL_BATCH))
        ]
        leader.step(now, [(now, actions)], job_fields={a.job: {"params": {}} for a in actions})
    models.Backend.objects.update(status="online")
    scheduler = Scheduler(execute=lambda program, params, **options: "{}", inline=True)
    ticks = 0
    step_ms = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        scheduler.tick()
        step_ms.append((time.perf_counter() - t0) * 1000)
        ticks += 1
        policy = scheduler.leader.policy
        assert policy is not None
        if not any(policy.queues(b).queued or policy.backends[b].running for b in BACKENDS):
            break
    wall = time.perf_counter() - start
    done = models.Job.objects.filter(status="Completed").count()
    return {
        "jobs": jobs,
        "completed": done,
        "wall_s": wall,
        "ticks": ticks,
        "transitions_per_s": 2 * done / wall,
        "tick_ms_median": statistics.median(step_ms),
    }


if __name__ == "__main__":
    main()

"""The Django side of `python -m bench --whatif`, in its own interpreter (started by
`bench.whatif`), on the scratch SQLite database DATABASE_URL names.

It fills a live state (8 backends, the generated instance tree with its shares
and prior usage, `--known` jobs queued through the leader, a fifth of them in
sessions, a window per backend), then times the what-if of an exclusive window,
a share change and a synthetic load over `--hours`: the snapshot, both futures,
the metrics, the whole `whatif_run`, and the page's `/what-if/run` response.
Writes the timings as JSON to `--result`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import django

CHUNK = 2_000  # submissions per leader step while filling


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.whatif_child")
    parser.add_argument("--known", type=int, required=True)
    parser.add_argument("--per-hour", type=float, required=True)
    parser.add_argument("--hours", type=float, required=True)
    parser.add_argument("--reps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    start = time.perf_counter()
    _fill(args.known, args.seed)
    fill_s = time.perf_counter() - start
    result = _measure(args.per_hour, args.hours, args.reps, args.seed)
    Path(args.result).write_text(json.dumps({"fill_s": fill_s, **result}))


def _fill(known: int, seed: int) -> None:
    from django.utils import timezone

    from scheduler import models
    from scheduler.engine import eager
    from scheduler.policy import model as m
    from scheduler.services import instances_ensure

    from .generate import BACKENDS, instances, prior_usage, shares

    rng = random.Random(seed)
    now = timezone.now()
    for name in BACKENDS:
        models.Backend.objects.create(
            name=name, job_overhead=timedelta(seconds=2), shot_time=timedelta(microseconds=100)
        )
    names = [name for name, _ in instances()]
    for path in names:
        instances_ensure(path=path)
    for node, share in shares().items():
        models.Instance.objects.filter(path=node).update(share=share)
    for path, used in prior_usage(rng).items():
        models.UsageCharge.objects.create(
            instance=models.Instance.objects.get(path=path),
            kind=models.UsageCharge.Kind.PRIOR,
            microseconds=round(used * 1e6),
            ended_at=now - timedelta(days=1),
        )
    for n, name in enumerate(BACKENDS[1:], 1):
        models.Reservation.objects.create(
            backend=models.Backend.objects.get(name=name),
            instance=models.Instance.objects.get(path=names[n % len(names)]),
            start=now + timedelta(hours=n),
            end=now + timedelta(hours=n, minutes=45),
            exclusive=n % 2 == 0,
        )
    actions: list[m.Action] = []
    sessions = 0
    while len(actions) < known:
        path, backend = rng.choice(names), rng.choice(BACKENDS)
        expected = round(rng.uniform(1, 60) * 1e6)
        if rng.random() < 0.2 / 6:  # a session of 2-10 jobs: about a fifth of the jobs
            sessions += 1
            sid = f"s{sessions}"
            for k in range(rng.randint(2, 10)):
                actions.append(
                    m.Submit(
                        job=f"{sid}-{k}",
                        instance=path,
                        backend=backend,
                        session=sid,
                        start_session=k == 0,
                        expected=expected,
                    )
                )
        else:
            actions.append(
                m.Submit(job=f"j{len(actions)}", instance=path, backend=backend, expected=expected)
            )
    for i in range(0, len(actions), CHUNK):
        eager.step(actions[i : i + CHUNK], at=now)


def _measure(per_hour: float, hours: float, reps: int, seed: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from scheduler import models
    from scheduler.policy import futures, outcomes
    from scheduler.snapshot import live_state
    from scheduler.whatif.changes import parse_all
    from scheduler.whatif.report import HOUR_TICKS, report_json, whatif_run

    from .generate import BACKENDS

    window = f"reservation:{BACKENDS[0]},ibm-q/open/main,+1h,+3h,exclusive"
    specs = [window, "share:research=6"]
    specs += [f"load:{name},research/chem/vqe,{per_hour / len(BACKENDS):g}" for name in BACKENDS]
    phases: dict[str, list[float]] = {"snapshot": [], "futures": [], "metrics": [], "run": []}
    counts: dict[str, int] = {}
    answers = []
    now = timezone.now()  # one instant for every repetition: the answers must be equal
    for _ in range(reps):
        proposed = parse_all(specs, now=now)
        clock = time.perf_counter()
        policy, overheads = live_state(now)
        phases["snapshot"].append(time.perf_counter() - clock)
        scenario = futures.Scenario(
            now=_ticks(now),
            end=_ticks(now) + round(hours * HOUR_TICKS),
            hour=HOUR_TICKS,
            loads=tuple(p.load for p in proposed if p.load),
            overheads=overheads,
            seed=seed,
        )
        clock = time.perf_counter()
        without, with_ = futures.compare(
            policy, scenario, [p.change for p in proposed if p.change], in_place=True
        )
        phases["futures"].append(time.perf_counter() - clock)
        clock = time.perf_counter()
        outcomes.node_rows(without, with_)
        outcomes.backend_use(without), outcomes.backend_use(with_)
        outcomes.session_fates(without, with_)
        outcomes.timeline(without), outcomes.timeline(with_)
        phases["metrics"].append(time.perf_counter() - clock)
        report = whatif_run(changes=proposed, hours=hours, seed=seed, now=now)
        phases["run"].append(report.seconds)
        answers.append(_without_time(report_json(report)))
        counts = {
            "known": sum(1 for j in with_.jobs if not j.synthetic),
            "synthetic": sum(1 for j in with_.jobs if j.synthetic),
            "started_with": sum(1 for j in with_.jobs if j.started and j.started >= scenario.now),
            "sessions": len(models.Session.objects.exclude(state="closed")),
        }
    client = Client()
    client.force_login(get_user_model().objects.create(username="bench-op", is_staff=True))
    query = urlencode([("c", spec) for spec in specs] + [("hours", hours), ("seed", seed)])
    client.get(f"/what-if/run?{query}")  # warm: templates compiled, URL resolver loaded
    page = []
    for _ in range(reps):
        clock = time.perf_counter()
        answer = client.get(f"/what-if/run?{query}")
        page.append(time.perf_counter() - clock)
        assert answer.status_code == 200, answer.content[:300]
        counts["page_bytes"] = len(answer.content)
    if os.environ.get("QDASH_BENCH_PROFILE"):
        import cProfile

        cProfile.runctx(
            "client.get(f'/what-if/run?{query}')",
            globals(),
            {"client": client, "query": query},
            os.environ["QDASH_BENCH_PROFILE"],
        )
    return {
        "phases": phases,
        "page": page,
        "counts": counts,
        "deterministic": all(a == answers[0] for a in answers),
    }


def _ticks(moment: Any) -> int:
    from scheduler.clock import to_ticks

    return to_ticks(moment)


def _without_time(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer minus what moves with the clock (the run time, the instants)."""
    return {k: v for k, v in answer.items() if k not in ("seconds", "now", "end", "changes")}


if __name__ == "__main__":
    main()

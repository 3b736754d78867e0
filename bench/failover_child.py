"""`python -m bench.failover_child CMD`: the Django side of `python -m bench --failover`.

Works on the database DATABASE_URL names (the scratch one bench.failover made,
filled by `bench.engine_child`), answering in the JSON file given by --result.

- loads: in one process, a new leader's first step after a cold load, against
  the same first step after taking over a standby's memory (loaded once, then
  following the journal): the seconds each costs, and whether both leaders hold
  the same state afterwards;
- trickle: submissions through the web processes' code (`jobs_submit`) at a
  steady rate, with a cancellation now and then, until killed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import django


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.failover_child")
    parser.add_argument("command", choices=["loads", "trickle"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
    django.setup()
    if args.command == "trickle":
        _trickle(args.rate)
        return
    Path(args.result).write_text(json.dumps(_loads(args.reps)))


def _loads(reps: int) -> dict[str, Any]:
    from django.utils import timezone

    from scheduler.clock import to_ticks
    from scheduler.engine.journal import digest
    from scheduler.engine.standby import Standby
    from scheduler.engine.step import Leader

    cold_s, warm_s, follow_s, same = [], [], [], True
    for _ in range(reps):
        cold = Leader(resumes=True)
        start = time.perf_counter()
        cold.step(to_ticks(timezone.now()))
        cold_s.append(time.perf_counter() - start)
        standby = Standby()
        start = time.perf_counter()
        standby.follow()  # the standby's own load, long before a failover
        follow_s.append(time.perf_counter() - start)
        warm = Leader(resumes=True)
        warm.takeover = standby.take_over
        start = time.perf_counter()
        warm.step(to_ticks(timezone.now()))
        warm_s.append(time.perf_counter() - start)
        assert warm.loads == 0, "the standby's memory was not taken over"
        assert cold.policy is not None and warm.policy is not None
        mine, theirs = digest(warm.policy), digest(cold.policy)
        mine.pop("now"), theirs.pop("now")
        same = same and mine == theirs and set(warm.policy.jobs) == set(cold.policy.jobs)
    return {"cold_s": cold_s, "warm_s": warm_s, "standby_load_s": follow_s, "same": same}


def _trickle(rate: float) -> None:
    """Submit (and now and then cancel) at `rate` a second until killed."""
    from django.contrib.auth import get_user_model

    from scheduler import models, services
    from scheduler.submission import jobs_submit

    from .engine_child import client_params
    from .generate import BACKENDS

    user = get_user_model().objects.get(username="bench")
    instance = models.Instance.objects.filter(members=user).order_by("path").first()
    assert instance is not None
    backends = [models.Backend.objects.get(name=name) for name in BACKENDS]
    params = client_params()
    n = 0
    while True:
        start = time.monotonic()
        submitted = jobs_submit(
            owner=user,
            backend=backends[n % len(backends)],
            instance=instance,
            program_id="sampler",
            params=params,
        )
        if n % 10 == 9:  # a cancellation: the leader ends a queued job
            services.jobs_cancel(job=submitted.job, actor=user)
        n += 1
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - start)))


if __name__ == "__main__":
    main()

"""Job runtime limits, cancels and paused backends (docs/rules.md, "Jobs")."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.policy.model import FinishJob

from .helpers import (
    B,
    cancel,
    make_policy,
    outcome_of,
    pause,
    resume,
    session_job,
    start_session,
    starts,
    submit,
    timeline,
)

EXCEEDED = "max_execution_time_exceeded"

# (duration, max_execution_time, backend "a" limit, system backend limit)
#   -> (status, ended_at, error, runtime limit); the job starts at 0.
LIMITS: list[Any] = [
    pytest.param(100, 30, None, 10800, ("Failed", 30, EXCEEDED, 30), id="over_max_time_fails"),
    pytest.param(30, 30, None, 10800, ("Completed", 30, None, 30), id="run_of_exactly_limit"),
    pytest.param(29, 30, None, 10800, ("Completed", 29, None, 30), id="run_under_limit"),
    pytest.param(60, None, 50, 10800, ("Failed", 50, EXCEEDED, 50), id="backend_limit_applies"),
    pytest.param(60, 100, 50, 10800, ("Failed", 50, EXCEEDED, 50), id="backend_limit_is_lower"),
    pytest.param(60, 40, 50, 10800, ("Failed", 40, EXCEEDED, 40), id="max_time_is_lower"),
    pytest.param(50, 100, 50, 10800, ("Completed", 50, None, 50), id="exactly_backend_limit"),
    pytest.param(30, None, None, 20, ("Failed", 20, EXCEEDED, 20), id="system_backend_limit"),
    pytest.param(30, None, 25, 20, ("Failed", 25, EXCEEDED, 25), id="backend_limit_beats_system"),
    pytest.param(None, None, None, 20, ("Failed", 20, EXCEEDED, 20), id="unknown_duration_hits"),
    pytest.param(0, 0, None, 10800, ("Completed", 0, None, 0), id="zero_limit_zero_run"),
    pytest.param(1, 0, None, 10800, ("Failed", 0, EXCEEDED, 0), id="zero_limit_fails_at_start"),
]


@pytest.mark.parametrize(("duration", "max_time", "backend_limit", "system", "expected"), LIMITS)
def test_runtime_limit_is_min_of_max_execution_time_and_backend_limit(
    duration: int | None,
    max_time: int | None,
    backend_limit: int | None,
    system: int,
    expected: tuple[Any, ...],
) -> None:
    limits = {} if backend_limit is None else {"a": backend_limit}
    policy = make_policy(max_runtime=limits, backend_max_runtime=system)
    script = [(0, submit("j", duration=duration, max_execution_time=max_time))]

    timeline(policy, script)

    job = policy.jobs["j"]
    assert (job.status, job.ended_at, job.error, job.limit) == expected
    assert job.started_at == 0


def test_job_over_its_limit_frees_backend_at_start_plus_limit() -> None:
    policy = make_policy()
    script = [(0, submit("j1", duration=100, max_execution_time=30)), (1, submit("j2", B))]

    timeline(policy, script)

    assert starts(policy) == [(0, "j1", "fair_share"), (30, "j2", "fair_share")]


def test_finish_job_ends_a_job_of_unknown_duration_when_reported() -> None:
    policy = make_policy()
    timeline(policy, [(0, submit("j1", duration=None)), (1, submit("j2", B))], until=5)

    policy.run_instant(7, [FinishJob("j1")])

    assert outcome_of(policy, "j1") == ("Completed", 0, 7, None)
    assert policy.jobs["j2"].started_at == 7


# Cancels: j1 runs 0..50, j2 queued behind it.
@pytest.mark.parametrize(
    ("target", "j1", "j2"),
    [
        pytest.param(
            "j2",
            ("Completed", 0, 50, None),
            ("Cancelled", None, 20, None),
            id="cancelling_queued_job_cancels_it",
        ),
        pytest.param(
            "j1",
            ("Cancelled", 0, 20, None),
            ("Completed", 20, 30, None),
            id="cancelling_running_job_stops_it_and_frees_backend_at_once",
        ),
        pytest.param(
            "nope",
            ("Completed", 0, 50, None),
            ("Completed", 50, 60, None),
            id="cancelling_unknown_job_does_nothing",
        ),
    ],
)
def test_cancel_job(target: str, j1: tuple[Any, ...], j2: tuple[Any, ...]) -> None:
    policy = make_policy()
    script = [(0, submit("j1", duration=50)), (1, submit("j2")), (20, cancel(target))]

    outcomes = timeline(policy, script)

    assert outcomes[2].accepted
    assert outcome_of(policy, "j1") == j1
    assert outcome_of(policy, "j2") == j2


def test_cancelling_a_final_job_changes_nothing() -> None:
    policy = make_policy()

    timeline(policy, [(0, submit("j1")), (20, cancel("j1"))])

    assert outcome_of(policy, "j1") == ("Completed", 0, 10, None)


def test_paused_backend_starts_nothing_and_its_running_job_finishes() -> None:
    policy = make_policy("a", "b")
    script = [
        (0, submit("j1", duration=50)),
        (10, pause("a")),
        (20, submit("j2")),
        (20, submit("b1", backend="b")),
        (100, resume("a")),
    ]

    timeline(policy, script)

    assert outcome_of(policy, "j1") == ("Completed", 0, 50, None)
    assert outcome_of(policy, "j2")[1] == 100
    assert outcome_of(policy, "b1")[1] == 20  # another backend runs on


def test_paused_backend_keeps_session_timers_going() -> None:
    policy = make_policy()
    script = [
        (0, start_session("j1", "s", max_execution_time=200)),
        (5, pause()),
        (100, session_job("j2", "s")),
    ]

    timeline(policy, script)

    assert policy.sessions["s"].history == [
        (0, "open"),
        (0, "active"),
        (70, "inactive"),
        (200, "closed"),
    ]
    assert outcome_of(policy, "j2") == ("Failed", None, 200, "session_expired")


def test_paused_at_creation_backend_starts_nothing_until_resumed() -> None:
    policy = make_policy(paused=["a"])

    timeline(policy, [(0, submit("j1")), (30, resume())])

    assert starts(policy) == [(30, "j1", "fair_share")]


def test_zero_duration_jobs_all_run_at_one_instant() -> None:
    policy = make_policy()
    script = [(0, submit("x", duration=5))] + [
        (1, submit(f"z{i}", B, duration=0)) for i in range(4)
    ]

    timeline(policy, script)

    assert starts(policy) == [(0, "x", "fair_share")] + [
        (5, f"z{i}", "fair_share") for i in range(4)
    ]
    assert {policy.jobs[f"z{i}"].ended_at for i in range(4)} == {5}
    assert all(policy.jobs[f"z{i}"].status == "Completed" for i in range(4))


def test_zero_duration_job_submitted_to_idle_backend_starts_and_ends_at_once() -> None:
    policy = make_policy()

    policy.run_instant(3, [submit("z", duration=0)])

    assert outcome_of(policy, "z") == ("Completed", 3, 3, None)
    assert policy.backends["a"].running is None

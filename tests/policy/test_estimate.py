"""The plan: queue position and estimated start, worked by hand (docs/rules.md, "Queue
position and estimated start")."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.policy import Policy, make_plan

from .helpers import (
    A,
    B,
    C,
    R,
    create,
    make_policy,
    reservation,
    run_until_idle,
    session_job,
    start_session,
    submit,
    timeline,
)

# (setup, script, now, expected estimates {job: (position, start)}).
ESTIMATES: list[Any] = [
    pytest.param(
        {},
        [(0, submit("j1", duration=100)), (1, submit("j2")), (2, submit("j3", duration=20))],
        5,
        {"j2": (1, 100), "j3": (2, 110)},
        id="queue_behind_running_job",
    ),
    pytest.param(
        {},
        [(0, submit("j1", duration=100)), (1, submit("j2"))],
        50,
        {"j2": (1, 100)},
        id="estimate_later_than_last_instant",
    ),
    pytest.param(
        {},
        [(0, submit("j1", duration=100, max_execution_time=30)), (1, submit("j2"))],
        5,
        {"j2": (1, 30)},
        id="running_job_ends_at_its_runtime_limit",
    ),
    pytest.param(
        {"usage": {A: 100}},
        [(0, submit("x", C)), (1, submit("a1", A)), (2, submit("b1", B))],
        5,
        {"b1": (1, 10), "a1": (2, 20)},
        id="fair_share_order",
    ),
    pytest.param(
        {"reservations": [reservation(0, 1000)]},
        [(0, submit("x", A, duration=100)), (1, submit("a1", A)), (2, submit("r1", R))],
        5,
        {"r1": (1, 100), "a1": (2, 110)},
        id="reservation_lane_before_fair_share",
    ),
    pytest.param(
        {},
        [
            (0, start_session("j1", "s", duration=10)),
            (1, session_job("j2", "s")),
            (2, submit("x", B)),
        ],
        5,
        {"j2": (1, 10), "x": (2, 80)},
        id="session_lane_then_hold_then_fair_share",
    ),
    pytest.param(
        {},
        [(0, start_session("j1", "s")), (20, submit("x", B))],
        20,
        {"x": (1, 70)},
        id="hold_delays_fair_share_lane_by_interactive_timeout",
    ),
    pytest.param(
        {"reservations": [reservation(10, 100, exclusive=True)]},
        [(0, submit("x", C, duration=20)), (1, submit("a1", A))],
        5,
        {"a1": (1, 100)},
        id="exclusive_reservation_window_delays_other_instances",
    ),
    pytest.param(
        {"reservations": [reservation(10, 100, exclusive=True)]},
        [(0, submit("x", C, duration=20)), (1, submit("a1", A)), (2, submit("r1", R))],
        5,
        {"r1": (1, 20), "a1": (2, 100)},
        id="reserving_instance_runs_inside_exclusive_window",
    ),
    pytest.param(
        {"paused": ["a"]},
        [(0, submit("j1"))],
        5,
        {"j1": (None, None)},
        id="paused_backend_gives_no_estimate",
    ),
    pytest.param(
        {},
        [
            (0, create("s", max_ttl=30)),
            (0, session_job("j1", "s", duration=40)),
            (1, session_job("j2", "s")),
        ],
        5,
        {"j2": (None, None)},
        id="session_expiring_first_gives_no_estimate",
    ),
    pytest.param(
        {"backends": ("a", "b")},
        [
            (0, submit("j1", backend="a", duration=50)),
            (0, submit("k1", backend="b", duration=30)),
            (1, submit("j2", backend="a")),
            (1, submit("k2", backend="b")),
            (2, submit("k3", backend="b")),
        ],
        5,
        {"j2": (1, 50), "k2": (1, 30), "k3": (2, 40)},
        id="positions_count_per_backend",
    ),
]


def estimate(policy: Policy, now: int) -> dict[str, tuple[int | None, int | None]]:
    """Every queued job's (position, estimated start) in the plan."""
    return {uid: (e.position, e.start) for uid, e in make_plan(policy, now).entries.items()}


def _policy(setup: dict[str, Any]) -> Any:
    options = dict(setup)
    return make_policy(*options.pop("backends", ()), **options)


@pytest.mark.parametrize(("setup", "script", "now", "expected"), ESTIMATES)
def test_estimate(
    setup: dict[str, Any], script: list[Any], now: int, expected: dict[str, tuple[Any, Any]]
) -> None:
    policy = _policy(setup)
    timeline(policy, script, until=now)

    estimates = estimate(policy, now)

    assert estimates == expected


@pytest.mark.parametrize(("setup", "script", "now", "expected"), ESTIMATES)
def test_estimates_equal_actual_starts_when_nothing_new_arrives(
    setup: dict[str, Any], script: list[Any], now: int, expected: dict[str, tuple[Any, Any]]
) -> None:
    policy = _policy(setup)
    timeline(policy, script, until=now)
    estimates = estimate(policy, now)

    run_until_idle(policy)

    assert estimates.keys() == expected.keys()
    for job, (_, start) in estimates.items():
        assert start == policy.jobs[job].started_at, job


def test_estimate_leaves_the_policy_untouched() -> None:
    policy = make_policy()
    timeline(policy, [(0, submit("j1", duration=100)), (1, submit("j2"))], until=5)
    events = list(policy.events)

    estimate(policy, 5)

    assert policy.events == events
    assert policy.jobs["j2"].status == "Queued"
    assert policy.now == 5


def test_estimate_of_empty_queue_is_empty() -> None:
    policy = make_policy()
    timeline(policy, [(0, submit("j1"))], until=5)

    assert estimate(policy, 5) == {}


def test_estimate_uses_modeled_time_of_job_that_runs_until_reported() -> None:
    policy = make_policy()
    script = [(0, submit("j1", duration=None, expected=30)), (1, submit("j2"))]
    timeline(policy, script, until=5)

    assert estimate(policy, 5) == {"j2": (1, 30)}


def test_estimate_assumes_overdue_job_ends_now() -> None:
    policy = make_policy()
    script = [(0, submit("j1", duration=None, expected=30)), (1, submit("j2"))]
    timeline(policy, script, until=40)

    assert estimate(policy, 40) == {"j2": (1, 40)}

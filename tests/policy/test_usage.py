"""Fair-share usage: runs plus holds, charged at their end, in a rolling window
(docs/rules.md, "Fair-share usage")."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import (
    A,
    R,
    cancel,
    cancel_session,
    create,
    make_policy,
    pause,
    reservation,
    resume,
    session_job,
    start_session,
    submit,
    timeline,
    usage_at,
)

# (setup, script, instant looked at, node, usage). Unless said otherwise a
# session of A runs j1 0..10 then holds the backend 10..70.
USAGE: list[Any] = [
    pytest.param({}, [(0, submit("j1", A))], 10, A, 10, id="run_charged_at_its_end"),
    pytest.param({}, [(0, submit("j1", A))], 9, A, 0, id="run_not_charged_before_it_ends"),
    pytest.param({}, [(0, start_session("j1", "s"))], 70, A, 70, id="usage_is_runs_plus_holds"),
    pytest.param(
        {}, [(0, start_session("j1", "s"))], 69, A, 10, id="hold_not_charged_before_it_ends"
    ),
    pytest.param(
        {},
        [(0, start_session("j1", "s")), (20, pause()), (40, resume())],
        70,
        A,
        50,
        id="hold_not_charged_while_backend_paused",
    ),
    pytest.param(
        {},
        [(0, start_session("j1", "s")), (20, pause())],
        20,
        A,
        20,
        id="pausing_ends_and_charges_the_hold",
    ),
    pytest.param(
        {"reservations": [reservation(20, 40, exclusive=True)]},
        [(0, start_session("j1", "s"))],
        70,
        A,
        50,
        id="hold_not_charged_inside_other_instance_exclusive_reservation",
    ),
    pytest.param(
        {"reservations": [reservation(20, 40)]},
        [(0, start_session("j1", "s"))],
        70,
        A,
        70,
        id="hold_charged_inside_other_instance_non_exclusive_reservation",
    ),
    pytest.param(
        {"reservations": [reservation(0, 100, exclusive=True)]},
        [(0, start_session("j1", "s", R))],
        70,
        R,
        70,
        id="hold_charged_inside_own_exclusive_reservation",
    ),
    pytest.param(
        {"reservations": [reservation(20, 40)]},
        [(0, start_session("j1", "s")), (25, submit("r1", R))],
        70,
        A,
        60,
        id="reservation_lane_job_interrupts_hold",
    ),
    pytest.param(
        {},
        [(0, create("s", max_ttl=40)), (0, session_job("j1", "s"))],
        40,
        A,
        40,
        id="hold_ends_when_session_expires",
    ),
    pytest.param(
        {"reservations": [reservation(0, 50)]},
        [(0, start_session("j1", "s", R))],
        50,
        R,
        50,
        id="hold_ends_when_bound_session_closes_at_window_end",
    ),
    pytest.param(
        {},
        [(0, start_session("j1", "s")), (30, cancel_session("s"))],
        30,
        A,
        30,
        id="hold_ends_when_session_is_cancelled",
    ),
    pytest.param(
        {},
        [(0, start_session("j1", "s")), (30, session_job("j2", "s"))],
        30,
        A,
        30,
        id="hold_ends_when_next_session_job_starts",
    ),
    pytest.param(
        {},
        [(0, submit("j1", duration=50)), (20, cancel("j1"))],
        20,
        A,
        20,
        id="cancelled_running_job_charged_for_time_run",
    ),
    pytest.param(
        {"paused": ["a"]},
        [(0, submit("j1")), (20, cancel("j1"))],
        20,
        A,
        0,
        id="cancelled_queued_job_not_charged",
    ),
    pytest.param(
        {},
        [(0, submit("j1", duration=50, max_execution_time=30))],
        30,
        A,
        30,
        id="job_failing_at_limit_charged_up_to_limit",
    ),
    pytest.param(
        {"usage_window": 100}, [(0, submit("j1"))], 109, A, 10, id="window_keeps_recent_charge"
    ),
    pytest.param(
        {"usage_window": 100}, [(0, submit("j1"))], 110, A, 0, id="charge_expires_at_window"
    ),
    pytest.param({"usage": {A: 500}, "usage_window": 100}, [], 99, A, 500, id="prior_usage_counts"),
    pytest.param({"usage": {A: 500}, "usage_window": 100}, [], 100, A, 0, id="prior_usage_expires"),
]


@pytest.mark.parametrize(("setup", "script", "at", "node", "expected"), USAGE)
def test_usage(setup: dict[str, Any], script: list[Any], at: int, node: str, expected: int) -> None:
    policy = make_policy(**setup)

    timeline(policy, script, until=at)

    assert usage_at(policy, node, at) == expected


def test_subtree_usage_is_sum_of_leaves() -> None:
    policy = make_policy("a", "b", "c", "d")
    script = [
        (0, submit("j1", "hubA/g1/p1", "a", duration=10)),
        (0, submit("j2", "hubA/g1/p2", "b", duration=20)),
        (0, submit("j3", "hubA/g2/p1", "c", duration=30)),
        (0, submit("j4", "hubB/g1/p1", "d", duration=40)),
    ]

    timeline(policy, script)

    assert {
        node: usage_at(policy, node, 100) for node in ("hubA/g1", "hubA/g2", "hubA", "hubB")
    } == {
        "hubA/g1": 30,
        "hubA/g2": 30,
        "hubA": 60,
        "hubB": 40,
    }


def test_usage_counts_runs_on_every_backend() -> None:
    policy = make_policy("a", "b")

    timeline(policy, [(0, submit("j1", A, "a", 10)), (0, submit("j2", A, "b", 15))])

    assert usage_at(policy, A, 20) == 25

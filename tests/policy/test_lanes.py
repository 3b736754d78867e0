"""Picking the next job (docs/rules.md, "Lanes"): reservation lane, session lane, fair share."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import (
    A,
    B,
    C,
    R,
    create,
    make_policy,
    reservation,
    session_job,
    start_session,
    starts,
    submit,
    timeline,
)

FS, SES, RES = "fair_share", "session", "reservation"

# (setup for make_policy, script, expected starts on backend "a": (time, job, lane))
LANES: list[Any] = [
    pytest.param(
        {"reservations": [reservation(0, 1000)]},
        [(0, submit("x", A, duration=10)), (1, submit("a1", A)), (2, submit("r1", R))],
        [(0, "x", FS), (10, "r1", RES), (20, "a1", FS)],
        id="reservation_lane_runs_reserving_instance_before_older_jobs",
    ),
    pytest.param(
        {"reservations": [reservation(0, 1000)]},
        [
            (0, start_session("s0", "sR", R)),
            (1, submit("r_old", R)),
            (2, session_job("s1", "sR", R)),
        ],
        [(0, "s0", RES), (10, "s1", RES), (20, "r_old", RES)],
        id="reservation_lane_runs_active_session_of_reserving_instance_first",
    ),
    pytest.param(
        {"reservations": [reservation(0, 1000)]},
        [
            (0, submit("x", A, duration=100)),
            (1, create("sR", R)),
            (2, session_job("s1", "sR", R)),
            (3, submit("r_loose", R)),
            (4, submit("a1", A)),
        ],
        # s1 (in a still-open session) is the instance's oldest job; after
        # r_loose the active session sR holds the backend until 110 + 60.
        [(0, "x", FS), (100, "s1", RES), (110, "r_loose", RES), (170, "a1", FS)],
        id="reservation_lane_takes_oldest_job_of_instance_including_open_session_jobs",
    ),
    pytest.param(
        {"reservations": [reservation(10, 100, exclusive=True)]},
        [(0, submit("x", A, duration=20)), (1, submit("a1", A))],
        [(0, "x", FS), (100, "a1", FS)],
        id="exclusive_reservation_idles_backend_when_instance_sends_nothing",
    ),
    pytest.param(
        {"reservations": [reservation(10, 100, exclusive=True)]},
        [(0, submit("x", A, duration=20)), (1, submit("a1", A)), (50, submit("r1", R))],
        [(0, "x", FS), (50, "r1", RES), (100, "a1", FS)],
        id="exclusive_reservation_starts_only_reserving_instance",
    ),
    pytest.param(
        {"reservations": [reservation(20, 100, exclusive=True)]},
        [(0, start_session("j1", "sA", A, duration=30)), (5, session_job("j2", "sA", A))],
        [(0, "j1", FS), (100, "j2", SES)],
        id="exclusive_window_blocks_active_session_which_resumes_after_it",
    ),
    pytest.param(
        {"reservations": [reservation(10, 100)]},
        [(0, submit("x", A, duration=20)), (1, submit("a1", A))],
        [(0, "x", FS), (20, "a1", FS)],
        id="non_exclusive_reservation_falls_through_when_instance_has_nothing",
    ),
    pytest.param(
        {"reservations": [reservation(50, 100)]},
        [(0, submit("x", C, duration=20)), (1, submit("a1", A)), (2, submit("r1", R))],
        [(0, "x", FS), (20, "a1", FS), (30, "r1", FS)],
        id="reservation_lane_is_closed_before_window_opens",
    ),
    pytest.param(
        {},
        [
            (0, start_session("b0", "sB", B)),
            (1, submit("a1", A)),
            (2, session_job("b1", "sB", B)),
        ],
        [(0, "b0", FS), (10, "b1", SES), (80, "a1", FS)],
        id="session_lane_runs_active_session_jobs_before_older_fair_share_jobs",
    ),
    pytest.param(
        {},
        [(0, start_session("b0", "sB", B)), (1, submit("a1", A))],
        [(0, "b0", FS), (70, "a1", FS)],
        id="active_session_with_nothing_queued_holds_until_interactive_timeout",
    ),
    pytest.param(
        {},
        [
            (0, submit("a0", A, duration=100)),
            (1, create("sB", B)),
            (2, session_job("b1", "sB", B)),
            (3, submit("a1", A)),
            (4, session_job("b2", "sB", B)),
        ],
        # sB is open while waiting: its jobs compete in the fair-share lane.
        [(0, "a0", FS), (100, "b1", FS), (110, "b2", SES), (180, "a1", FS)],
        id="open_session_jobs_wait_in_fair_share_lane_then_activate",
    ),
    pytest.param(
        {},
        [
            (0, start_session("b0", "sB", B)),
            (1, submit("a1", A, duration=50)),
            (100, session_job("b1", "sB", B)),
            (101, submit("c1", C)),
        ],
        # sB went inactive at 70, so b1 competes in the fair-share lane and
        # loses to the later c1 (hubC has used 0, hubB 10).
        [(0, "b0", FS), (70, "a1", FS), (120, "c1", FS), (130, "b1", FS)],
        id="inactive_session_job_waits_in_fair_share_lane",
    ),
]


@pytest.mark.parametrize(("setup", "script", "expected"), LANES)
def test_lanes(setup: dict[str, Any], script: list[Any], expected: list[Any]) -> None:
    policy = make_policy(**setup)

    timeline(policy, script)

    assert starts(policy, "a") == expected


# Fair share: every job is submitted at 0 on an idle backend, so every pick is
# a fair-share pick; jobs run 100 s each.
FAIR_SHARE: list[Any] = [
    pytest.param(
        {"usage": {"hubA/g/p": 100}},
        ["hubA/g/p", "hubB/g/p"],
        ["j2", "j1"],
        id="hub_with_lower_usage_goes_first",
    ),
    pytest.param(
        {"usage": {"hubA/g/p": 300, "hubB/g/p": 200}, "shares": {"hubA": 3}},
        ["hubB/g/p", "hubA/g/p"],
        ["j2", "j1"],
        id="usage_is_divided_by_share",
    ),
    pytest.param(
        {"usage": {"hubA/g1/p": 10, "hubB/g/p": 1000}},
        ["hubA/g1/p", "hubA/g2/p", "hubB/g/p"],
        # hubA (10) before hubB (1000); inside hubA, g2 (0) before g1 (10);
        # then hubA (g1: 10 + g2's 100 = 110) still before hubB.
        ["j2", "j1", "j3"],
        id="descends_hub_then_group_by_usage",
    ),
    pytest.param(
        {"usage": {"h/g/p1": 50}},
        ["h/g/p1", "h/g/p2"],
        ["j2", "j1"],
        id="descends_to_project_by_usage",
    ),
    pytest.param(
        {"usage": {"hubA/g1/p": 100, "hubA/g2/p": 270}, "shares": {"hubA/g2": 3}},
        ["hubA/g1/p", "hubA/g2/p"],
        ["j2", "j1"],
        id="group_share_weights_group_level",
    ),
    pytest.param(
        {},
        ["hubB/g/p", "hubA/g/p", "hubB/g/p"],
        # Ties (all 0) go to the child holding the oldest job: hubB (j1),
        # then hubA (usage 0 < hubB's 100).
        ["j1", "j2", "j3"],
        id="ties_go_to_child_with_oldest_job",
    ),
    pytest.param(
        {"usage": {"hubA/g/p": 100, "hubB/g/p": 100}},
        ["hubB/g/p", "hubA/g/p"],
        ["j1", "j2"],
        id="equal_nonzero_usage_ties_go_to_oldest_job",
    ),
    pytest.param(
        {},
        ["h/g/p", "h/g/p", "h/g/p"],
        ["j1", "j2", "j3"],
        id="equal_submission_times_break_by_submission_order",
    ),
    pytest.param(
        {"shares": {"hubA": 0}},
        ["hubA/g/p", "hubB/g/p", "hubB/g/p"],
        ["j2", "j3", "j1"],
        id="zero_share_goes_last_even_with_zero_usage",
    ),
    pytest.param(
        {"shares": {"hubA": 0, "hubB": 0}, "usage": {"hubB/g/p": 5}},
        ["hubB/g/p", "hubA/g/p", "hubA/g/p"],
        ["j1", "j2", "j3"],
        id="zero_shares_tie_and_go_to_oldest_job",
    ),
    pytest.param(
        {"shares": {"hubA/g/p": 0}},
        ["hubA/g/p", "hubA/g/p2"],
        ["j2", "j1"],
        id="zero_share_at_project_level_goes_last",
    ),
]


@pytest.mark.parametrize(("setup", "instances", "expected"), FAIR_SHARE)
def test_fair_share_order(setup: dict[str, Any], instances: list[str], expected: list[str]) -> None:
    policy = make_policy(**setup)
    script = [(0, submit(f"j{i}", inst, duration=100)) for i, inst in enumerate(instances, 1)]

    timeline(policy, script)

    assert [job for _, job, _ in starts(policy)] == expected


def test_fair_share_uses_usage_of_all_backends() -> None:
    policy = make_policy("a", "b")
    script = [
        (0, submit("b_on_b", B, "b", duration=50)),
        (100, submit("x", C, duration=10)),
        (101, submit("b1", B)),
        (102, submit("a1", A)),
    ]

    timeline(policy, script)

    assert starts(policy, "a") == [(100, "x", FS), (110, "a1", FS), (120, "b1", FS)]


def test_picking_a_session_job_in_reservation_lane_deactivates_other_active_session() -> None:
    policy = make_policy(reservations=[reservation(20, 1000)])
    script = [
        (0, start_session("a0", "sA", A)),
        (1, create("sR", R)),
        (25, session_job("r1", "sR", R)),
    ]

    timeline(policy, script, until=25)

    assert policy.sessions["sA"].history[-1] == (25, "inactive")
    assert policy.sessions["sR"].history[-1] == (25, "active")
    assert policy.backends["a"].active_session is policy.sessions["sR"]

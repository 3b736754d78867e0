"""Reservations and bound sessions (docs/rules.md, "Reservations")."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.policy.model import ReservationWarning

from .helpers import (
    A,
    R,
    create,
    make_policy,
    outcome_of,
    reservation,
    session_job,
    start_session,
    starts,
    submit,
    timeline,
)

# Window r1 = [50, 200) for R on "a". (script, bound_reservation, history).
BINDING: list[Any] = [
    pytest.param(
        [(60, start_session("j1", "s", R))],
        "r1",
        [(60, "open"), (60, "active"), (130, "inactive"), (200, "closed")],
        id="session_activated_inside_window_is_bound_and_closes_at_window_end",
    ),
    pytest.param(
        [(50, start_session("j1", "s", R))],
        "r1",
        [(50, "open"), (50, "active"), (120, "inactive"), (200, "closed")],
        id="session_activated_at_window_start_is_bound",
    ),
    pytest.param(
        [(0, start_session("j1", "s", R, duration=100))],
        None,
        [(0, "open"), (0, "active"), (160, "inactive"), (28800, "closed")],
        id="session_already_active_at_window_start_is_not_bound",
    ),
    pytest.param(
        [(0, start_session("j1", "s", R)), (100, session_job("j2", "s", R))],
        "r1",
        [
            (0, "open"),
            (0, "active"),
            (70, "inactive"),
            (100, "active"),
            (170, "inactive"),
            (200, "closed"),
        ],
        id="session_reactivated_inside_window_is_bound",
    ),
    pytest.param(
        [(200, start_session("j1", "s", R))],
        None,
        [(200, "open"), (200, "active"), (270, "inactive"), (200 + 28800, "closed")],
        id="session_activated_at_window_end_is_not_bound",
    ),
    pytest.param(
        [(60, start_session("j1", "s", A))],
        None,
        [(60, "open"), (60, "active"), (130, "inactive"), (60 + 28800, "closed")],
        id="session_of_other_instance_is_not_bound",
    ),
]


@pytest.mark.parametrize(("script", "bound", "history"), BINDING)
def test_bound_session(script: list[Any], bound: str | None, history: list[Any]) -> None:
    policy = make_policy(reservations=[reservation(50, 200)])

    timeline(policy, script)

    session = policy.sessions["s"]
    assert session.bound_reservation == bound
    assert session.history == history
    assert session.closed_reason == ("reservation_ended" if bound else "expired")


def test_bound_session_at_window_end_finishes_running_job_and_fails_queued_ones() -> None:
    policy = make_policy(reservations=[reservation(50, 200)])
    script = [
        (60, start_session("j1", "s", R, duration=130)),
        (100, session_job("j2", "s", R, duration=30)),
        (190, session_job("j3", "s", R)),
        (210, session_job("j4", "s", R)),
    ]

    outcomes = timeline(policy, script)

    assert outcome_of(policy, "j2") == ("Completed", 190, 220, None)
    assert outcome_of(policy, "j3") == ("Failed", None, 200, "reservation_ended")
    assert (outcomes[3].accepted, outcomes[3].code) == (False, "session_closed")
    assert policy.sessions["s"].history[-1] == (200, "closed")


def test_queued_non_session_jobs_fall_back_to_fair_share_after_window() -> None:
    policy = make_policy(reservations=[reservation(50, 100, exclusive=True)])
    script = [
        (50, submit("r1", R, duration=60)),
        (51, submit("r2", R)),
        (52, submit("a1", A)),
    ]

    timeline(policy, script)

    # At 110 hubR has used 60 and hubA 0: the window is over, a1 goes first.
    assert starts(policy) == [
        (50, "r1", "reservation"),
        (110, "a1", "fair_share"),
        (120, "r2", "fair_share"),
    ]


def test_back_to_back_windows_hand_the_backend_over_at_the_boundary() -> None:
    policy = make_policy(
        reservations=[
            reservation(0, 100, exclusive=True, id="r0"),
            reservation(100, 200, instance=A, exclusive=True, id="r1"),
        ]
    )
    script = [
        (10, start_session("j1", "s", R, duration=50)),
        (20, session_job("j2", "s", R, duration=50)),
        (30, submit("a1", A)),
    ]

    timeline(policy, script)

    assert policy.backends["a"].reservation is None
    assert policy.sessions["s"].closed_reason == "reservation_ended"
    assert outcome_of(policy, "j2") == ("Completed", 60, 110, None)
    assert outcome_of(policy, "a1")[1:3] == (110, 120)
    assert policy.jobs["a1"].lane == "reservation"


# Warnings on session creation. Window [start, end) for R on "a"; a session of
# R on "a" is created at 100 (system max TTL 1000).
WARNINGS: list[Any] = [
    pytest.param(50, 150, create("s", R), True, id="inside_window_warns_in_window"),
    pytest.param(100, 150, create("s", R), True, id="at_window_start_warns_in_window"),
    pytest.param(50, 100, create("s", R), None, id="window_ended_at_creation_no_warning"),
    pytest.param(500, 600, create("s", R), False, id="window_opening_within_max_ttl_warns"),
    pytest.param(1099, 1200, create("s", R), False, id="window_opening_just_before_horizon_warns"),
    pytest.param(1100, 1200, create("s", R), None, id="window_opening_at_now_plus_max_ttl_none"),
    pytest.param(
        300, 400, create("s", R, max_ttl=150), None, id="session_max_ttl_shortens_horizon"
    ),
    pytest.param(
        200, 400, create("s", R, max_ttl=150), False, id="window_inside_session_max_ttl_warns"
    ),
    pytest.param(
        300,
        400,
        start_session("j1", "s", R, max_execution_time=150),
        None,
        id="start_session_job_max_time_shortens_horizon",
    ),
    pytest.param(
        200,
        400,
        start_session("j1", "s", R, max_execution_time=150),
        False,
        id="start_session_job_warns_within_its_max_time",
    ),
    pytest.param(
        50, 150, start_session("j1", "s", R), True, id="start_session_job_inside_window_warns"
    ),
    pytest.param(50, 150, create("s", A), None, id="other_instance_window_no_warning"),
    pytest.param(
        50, 150, create("s", R, backend="b"), None, id="window_on_other_backend_no_warning"
    ),
]


@pytest.mark.parametrize(("start", "end", "action", "in_window"), WARNINGS)
def test_session_creation_warns_about_reservations_of_its_instance(
    start: int, end: int, action: Any, in_window: bool | None
) -> None:
    policy = make_policy("a", "b", system_max_ttl=1000, reservations=[reservation(start, end)])

    (outcome,) = policy.run_instant(100, [action]).outcomes

    assert outcome.accepted
    assert "s" in policy.sessions
    expected = () if in_window is None else (ReservationWarning("r1", start, end, in_window),)
    assert outcome.warnings == expected


def test_joining_a_session_gives_no_warning() -> None:
    policy = make_policy(reservations=[reservation(50, 150)])
    policy.run_instant(0, [create("s", R)])

    (outcome,) = policy.run_instant(60, [session_job("j1", "s", R)]).outcomes

    assert outcome.accepted
    assert outcome.warnings == ()


# Regression: timers of two reservations due at one instant used to compare
# Reservation objects in the timer heap (TypeError).
@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param((0, 100), (0, 200), id="same_start"),
        pytest.param((0, 100), (50, 100), id="same_end"),
    ],
)
def test_reservations_on_two_backends_may_share_an_instant(
    first: tuple[int, int], second: tuple[int, int]
) -> None:
    policy = make_policy(
        "a",
        "b",
        reservations=[
            reservation(*first, backend="a", id="ra"),
            reservation(*second, backend="b", id="rb"),
        ],
    )

    timeline(policy, [(60, submit("r1", R, "a")), (60, submit("r2", R, "b"))])

    assert [lane for _, _, lane in starts(policy)] == ["reservation", "reservation"]


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(create("s", R, max_ttl=0), id="create_session_max_ttl_0"),
        pytest.param(
            start_session("j1", "s", R, max_execution_time=0), id="start_session_max_time_0"
        ),
    ],
)
def test_zero_max_ttl_warns_only_about_an_open_window(action: Any) -> None:
    policy = make_policy(reservations=[reservation(500, 600)])

    (outcome,) = policy.run_instant(100, [action]).outcomes

    assert outcome.warnings == ()

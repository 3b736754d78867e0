"""Session states and timers (docs/rules.md, "Sessions")."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.policy.model import (
    BACKEND_MISMATCH,
    INSTANCE_MISMATCH,
    SESSION_CLOSED,
    UNKNOWN_BACKEND,
    UNKNOWN_SESSION,
)

from .helpers import (
    A,
    B,
    cancel,
    cancel_session,
    close,
    create,
    make_policy,
    outcome_of,
    pause,
    reservation,
    resume,
    session_job,
    start_session,
    starts,
    submit,
    timeline,
)


def test_session_goes_open_active_inactive_active_closed() -> None:
    policy = make_policy()
    script = [
        (0, create("s")),
        (5, session_job("j1", "s")),
        (100, session_job("j2", "s")),
        (120, close("s")),
    ]

    timeline(policy, script)

    session = policy.sessions["s"]
    assert session.history == [
        (0, "open"),
        (5, "active"),
        (75, "inactive"),
        (100, "active"),
        (120, "closed"),
    ]
    assert session.closed_reason == "closed"


# Max TTL: (session's max_ttl, first job's max_execution_time, system limit) -> max TTL.
MAX_TTL = [
    (100, 50, 28800, 100, "session_max_ttl_wins_over_first_job"),
    (100, None, 28800, 100, "session_max_ttl_alone"),
    (None, 50, 28800, 50, "first_job_max_execution_time_without_session_max_ttl"),
    (None, None, 28800, 28800, "system_limit_with_neither"),
    (50_000, None, 28800, 28800, "session_max_ttl_capped_by_system_limit"),
    (None, 50_000, 28800, 28800, "first_job_max_time_capped_by_system_limit"),
    (None, None, 300, 300, "system_limit_is_a_setting"),
]
MAX_TTL_CASES = [
    pytest.param(created_by, max_ttl, job_max, system, expected, id=f"{name}-{created_by}")
    for max_ttl, job_max, system, expected, name in MAX_TTL
    for created_by in ("create_session", "start_session")
    if created_by == "create_session" or max_ttl is None  # a start_session job has no max_ttl
]


@pytest.mark.parametrize(
    ("created_by", "max_ttl", "first_job_max", "system", "expected"), MAX_TTL_CASES
)
def test_max_ttl_is_fixed_by_session_or_first_job(
    created_by: str, max_ttl: int | None, first_job_max: int | None, system: int, expected: int
) -> None:
    policy = make_policy(system_max_ttl=system)
    if created_by == "create_session":
        script = [
            (0, create("s", max_ttl=max_ttl)),
            (0, session_job("j1", "s", max_execution_time=first_job_max)),
        ]
    else:
        script = [(0, start_session("j1", "s", max_execution_time=first_job_max))]

    timeline(policy, script)

    session = policy.sessions["s"]
    assert session.max_ttl == expected
    assert session.history[-1] == (expected, "closed")
    assert session.closed_reason == "expired"


def test_first_job_cancelled_still_fixes_max_ttl() -> None:
    policy = make_policy(paused=["a"])
    script = [
        (0, create("s")),
        (1, session_job("j1", "s", max_execution_time=50)),
        (2, cancel("j1")),
        (3, session_job("j2", "s", max_execution_time=500)),
        (10, resume()),
    ]

    timeline(policy, script)

    assert policy.sessions["s"].max_ttl == 50
    assert policy.sessions["s"].history[-1] == (60, "closed")  # first start 10, + 50


def test_max_ttl_clock_starts_at_first_job_start_not_creation() -> None:
    policy = make_policy()
    script = [
        (0, submit("x", B, duration=40)),
        (1, create("s", max_ttl=100)),
        (2, session_job("j1", "s")),
    ]

    timeline(policy, script)

    assert outcome_of(policy, "j1")[1] == 40
    assert policy.sessions["s"].history == [
        (1, "open"),
        (40, "active"),
        (110, "inactive"),
        (140, "closed"),
    ]


def test_max_ttl_expiry_fails_queued_jobs_and_running_job_finishes() -> None:
    policy = make_policy()
    script = [
        (0, create("s", max_ttl=100)),
        (0, session_job("j1", "s", duration=150)),
        (1, session_job("j2", "s")),
        (120, session_job("j3", "s")),
    ]

    outcomes = timeline(policy, script)

    assert outcome_of(policy, "j1") == ("Completed", 0, 150, None)
    assert outcome_of(policy, "j2") == ("Failed", None, 100, "session_expired")
    assert outcomes[3].accepted is False
    assert outcomes[3].code == SESSION_CLOSED
    assert "j3" not in policy.jobs
    assert policy.sessions["s"].closed_reason == "expired"


def test_max_ttl_keeps_running_while_session_is_inactive() -> None:
    policy = make_policy()
    script = [(0, create("s", max_ttl=500)), (0, session_job("j1", "s"))]

    timeline(policy, script)

    assert policy.sessions["s"].history == [
        (0, "open"),
        (0, "active"),
        (70, "inactive"),
        (500, "closed"),
    ]


def test_interactive_timeout_starts_when_session_job_ends() -> None:
    policy = make_policy()
    script = [(0, start_session("j1", "s")), (1, submit("x", B, duration=30))]

    timeline(policy, script)

    assert policy.sessions["s"].history[:3] == [(0, "open"), (0, "active"), (70, "inactive")]
    assert starts(policy) == [(0, "j1", "fair_share"), (70, "x", "fair_share")]


@pytest.mark.parametrize(
    ("at", "history", "j2_start"),
    [
        pytest.param(70, [(0, "active")], 70, id="session_job_at_deadline_keeps_session_active"),
        pytest.param(69, [(0, "active")], 69, id="session_job_before_deadline_keeps_it_active"),
        pytest.param(
            71,
            [(0, "active"), (70, "inactive"), (100, "active")],
            100,
            id="session_job_after_deadline_waits_in_fair_share_and_reactivates",
        ),
    ],
)
def test_submission_against_interactive_deadline(
    at: int, history: list[tuple[int, str]], j2_start: int
) -> None:
    policy = make_policy()
    script = [
        (0, start_session("j1", "s")),
        (1, submit("x", B, duration=30)),
        (at, session_job("j2", "s")),
    ]

    timeline(policy, script)

    assert policy.sessions["s"].history[1 : len(history) + 1] == history
    assert outcome_of(policy, "j2")[1] == j2_start


def test_interactive_timeout_starts_when_last_queued_job_is_cancelled() -> None:
    policy = make_policy()
    script = [
        (0, start_session("j1", "s")),
        (5, pause()),
        (20, session_job("j2", "s")),  # cancels the deadline at 70
        (40, cancel("j2")),  # restarts it: 40 + 60
        (41, resume()),
    ]

    timeline(policy, script)

    assert policy.sessions["s"].history[:3] == [(0, "open"), (0, "active"), (100, "inactive")]


def test_interactive_timeout_waits_for_running_job_when_queued_job_is_cancelled() -> None:
    policy = make_policy()
    script = [
        (0, start_session("j1", "s", duration=50)),
        (1, session_job("j2", "s")),
        (10, cancel("j2")),
    ]

    timeline(policy, script)

    assert policy.sessions["s"].history[:3] == [(0, "open"), (0, "active"), (110, "inactive")]


def test_interactive_timeout_starts_when_running_job_is_cancelled() -> None:
    policy = make_policy()
    script = [(0, start_session("j1", "s", duration=50)), (20, cancel("j1"))]

    timeline(policy, script)

    assert outcome_of(policy, "j1") == ("Cancelled", 0, 20, None)
    assert policy.sessions["s"].history[:3] == [(0, "open"), (0, "active"), (80, "inactive")]


def test_interactive_timeout_starts_when_session_job_fails_at_its_limit() -> None:
    policy = make_policy()
    script = [
        (0, create("s", max_ttl=1000)),
        (0, session_job("j1", "s", duration=50, max_execution_time=20)),
    ]

    timeline(policy, script)

    assert outcome_of(policy, "j1") == ("Failed", 0, 20, "max_execution_time_exceeded")
    assert policy.sessions["s"].history[:3] == [(0, "open"), (0, "active"), (80, "inactive")]


@pytest.mark.parametrize(
    ("mode", "x_start"),
    [
        pytest.param("batch", 11, id="batch_session_uses_its_own_short_interactive_timeout"),
        pytest.param("dedicated", 70, id="dedicated_session_holds_for_interactive_timeout"),
    ],
)
def test_batch_mode_interactive_timeout(mode: str, x_start: int) -> None:
    policy = make_policy(batch_interactive_ttl=1)
    script = [
        (0, create("s", mode=mode)),
        (0, session_job("j1", "s")),
        (1, submit("x", B)),
    ]

    timeline(policy, script)

    assert policy.sessions["s"].history[2] == (x_start, "inactive")
    assert outcome_of(policy, "x")[1] == x_start


def test_start_session_job_can_open_a_batch() -> None:
    policy = make_policy(batch_interactive_ttl=3)
    script = [(0, start_session("j1", "s", mode="batch"))]

    timeline(policy, script)

    assert policy.sessions["s"].mode == "batch"
    assert policy.sessions["s"].history[2] == (13, "inactive")


# Close vs cancel, on a session with j1 running 0..50 and j2 queued.
@pytest.mark.parametrize(
    ("action", "j2", "closed_at", "reason"),
    [
        pytest.param(close("s"), ("Completed", 50, 60, None), 60, "closed", id="close_drains"),
        pytest.param(
            cancel_session("s"),
            ("Cancelled", None, 20, "session_cancelled"),
            20,
            "cancelled",
            id="cancel_closes_at_once_and_cancels_queued_jobs",
        ),
    ],
)
def test_close_and_cancel_session(
    action: Any, j2: tuple[Any, ...], closed_at: int, reason: str
) -> None:
    policy = make_policy()
    script = [
        (0, start_session("j1", "s", duration=50)),
        (1, session_job("j2", "s")),
        (20, action),
        (30, session_job("j3", "s")),
    ]

    outcomes = timeline(policy, script)

    assert outcome_of(policy, "j1") == ("Completed", 0, 50, None)
    assert outcome_of(policy, "j2") == j2
    assert policy.sessions["s"].history[-1] == (closed_at, "closed")
    assert policy.sessions["s"].closed_reason == reason
    assert (outcomes[3].accepted, outcomes[3].code) == (False, SESSION_CLOSED)


@pytest.mark.parametrize(
    "action",
    [pytest.param(close("s"), id="close"), pytest.param(cancel_session("s"), id="cancel")],
)
def test_closing_a_holding_session_frees_the_backend_at_once(action: Any) -> None:
    policy = make_policy()
    script = [(0, start_session("j1", "s")), (1, submit("x", B)), (20, action)]

    timeline(policy, script)

    assert policy.sessions["s"].history[-1] == (20, "closed")
    assert outcome_of(policy, "x")[1] == 20


def test_closing_session_does_not_hold_between_its_queued_jobs() -> None:
    policy = make_policy(paused=["a"])
    script = [
        (0, create("s")),
        (0, session_job("j1", "s")),
        (0, session_job("j2", "s")),
        (1, submit("x", B)),
        (2, close("s")),
        (3, resume()),
    ]

    timeline(policy, script)

    assert [job for _, job, _ in starts(policy)] == ["j1", "j2", "x"]
    assert policy.sessions["s"].history[-1] == (23, "closed")
    assert outcome_of(policy, "x")[1] == 23


@pytest.mark.parametrize(
    ("script", "history", "reason"),
    [
        pytest.param(
            [(0, create("s"))],
            [(0, "open"), (1800, "closed")],
            "open_timeout",
            id="open_session_without_jobs_closes_at_open_timeout",
        ),
        pytest.param(
            [(0, create("s")), (10, session_job("j1", "s")), (20, cancel("j1"))],
            [(0, "open"), (1800, "closed")],
            "open_timeout",
            id="open_session_whose_jobs_were_cancelled_closes_at_open_timeout",
        ),
        pytest.param(
            [(0, create("s")), (10, session_job("j1", "s")), (2000, resume())],
            [(0, "open"), (2000, "active"), (2070, "inactive"), (2000 + 28800, "closed")],
            "expired",
            id="open_session_with_queued_job_stays_open_past_open_timeout",
        ),
        pytest.param(
            [(0, create("s")), (1800, session_job("j1", "s")), (1801, resume())],
            [(0, "open"), (1801, "active"), (1871, "inactive"), (1801 + 28800, "closed")],
            "expired",
            id="job_submitted_at_open_timeout_keeps_session_open",
        ),
        pytest.param(
            [(0, create("s")), (5, close("s"))],
            [(0, "open"), (5, "closed")],
            "closed",
            id="closing_an_empty_open_session_closes_it_at_once",
        ),
    ],
)
def test_open_timeout(script: list[Any], history: list[Any], reason: str) -> None:
    policy = make_policy(paused=["a"])

    timeline(policy, script)

    assert policy.sessions["s"].history == history
    assert policy.sessions["s"].closed_reason == reason


# Refusals, checked in order: each case also breaks every later rule.
REFUSALS: list[Any] = [
    pytest.param(submit("j", B, "nope", session="nope"), UNKNOWN_BACKEND, id="unknown_backend"),
    pytest.param(
        submit("j", B, "nope", session="closed_on_a"), UNKNOWN_BACKEND, id="unknown_backend_first"
    ),
    pytest.param(submit("j", B, "b", session="nope"), UNKNOWN_SESSION, id="unknown_session"),
    pytest.param(
        submit("j", B, "b", session="closed_on_a"), BACKEND_MISMATCH, id="backend_mismatch"
    ),
    pytest.param(
        submit("j", B, "a", session="closed_on_a"), INSTANCE_MISMATCH, id="instance_mismatch"
    ),
    pytest.param(submit("j", A, "a", session="closed_on_a"), SESSION_CLOSED, id="session_closed"),
    pytest.param(
        submit("j", A, "a", session="closing_on_a"),
        SESSION_CLOSED,
        id="closing_session_refuses_jobs",
    ),
    pytest.param(
        submit("j", B, "a", session="closing_on_a"),
        INSTANCE_MISMATCH,
        id="instance_mismatch_before_closing",
    ),
]


@pytest.mark.parametrize(("action", "code"), REFUSALS)
def test_refusals_are_checked_in_order(action: Any, code: str) -> None:
    policy = make_policy("a", "b")
    timeline(
        policy,
        [
            (0, create("closed_on_a", A, "a")),
            (0, close("closed_on_a")),
            (0, start_session("running", "closing_on_a", A, duration=100)),
            (1, close("closing_on_a")),
        ],
        until=10,
    )
    assert policy.sessions["closing_on_a"].state == "active"

    (outcome,) = policy.run_instant(10, [action]).outcomes

    assert (outcome.accepted, outcome.code) == (False, code)
    assert "j" not in policy.jobs


def test_create_session_on_unknown_backend_is_refused() -> None:
    policy = make_policy()

    (outcome,) = policy.run_instant(0, [create("s", A, "nope")]).outcomes

    assert (outcome.accepted, outcome.code) == (False, UNKNOWN_BACKEND)
    assert "s" not in policy.sessions


def test_at_most_one_active_session_per_backend() -> None:
    policy = make_policy("a", "b", reservations=[reservation(20, 1000, instance=B)])
    script = [
        (0, start_session("a1", "sA", A)),
        (0, start_session("b_other", "sB2", B, backend="b")),
        (1, create("sB", B)),
        (30, session_job("b1", "sB", B)),
    ]

    timeline(policy, script, until=30)

    assert policy.sessions["sA"].state == "inactive"
    assert policy.sessions["sB"].state == "active"
    assert policy.sessions["sB2"].state == "active"  # another backend: unaffected
    assert policy.sessions["sA"].history[-1] == (30, "inactive")
    assert [s.id for s in policy.sessions.values() if s.state == "active"] == ["sB2", "sB"]


def test_closed_session_never_reopens() -> None:
    policy = make_policy()
    script = [
        (0, start_session("j1", "s")),
        (5, cancel_session("s")),
        (6, session_job("j2", "s")),
        (7, close("s")),
        (8, cancel_session("s")),
    ]

    outcomes = timeline(policy, script)

    assert policy.sessions["s"].history == [(0, "open"), (0, "active"), (5, "closed")]
    assert outcomes[2].code == SESSION_CLOSED

"""Allocations: usage limits per instance-tree node (DESIGN.md 2.8), as tables of small
situations on one backend "a" unless said otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.policy import futures, make_plan, wait_reasons
from scheduler.policy.model import ALLOCATION_EXHAUSTED, PutBackend

from .helpers import (
    A,
    B,
    R,
    allocation,
    close,
    create,
    make_policy,
    put_allocation,
    reservation,
    resume,
    run_until_idle,
    session_job,
    start_session,
    starts,
    submit,
    timeline,
    usage_at,
)

FS, SES, RES = "fair_share", "session", "reservation"
A2 = "hubA/g2/p"
A_P1, A_P2 = "hubA/g/p1", "hubA/g/p2"

# (setup for make_policy, script, expected starts: (time, job, lane))
STARTS: list[Any] = [
    # ------------------------------------------------------------------ queue
    pytest.param(
        {"usage": {A: 50}, "allocations": [allocation(A, 50)], "usage_window": 100},
        [(10, submit("a1", A)), (10, submit("b1", B))],
        # the prior charge (ended at 0) leaves the window at 100: a1 starts then,
        # an instant at which nothing else happens
        [(10, "b1", FS), (100, "a1", FS)],
        id="queue_rolling_job_starts_when_the_charge_leaves_the_window",
    ),
    pytest.param(
        {"allocations": [allocation(A, 15)], "usage_window": 100},
        [(0, submit("a1", A)), (0, submit("a2", A)), (0, submit("a3", A))],
        # 20 consumed at 20; the charge ended at 10 leaves at 110 and 10 < 15
        [(0, "a1", FS), (10, "a2", FS), (110, "a3", FS)],
        id="queue_rolling_frees_when_enough_charges_have_left",
    ),
    pytest.param(
        {"allocations": [allocation(A, 15, period=(0, 50))]},
        [(0, submit("a1", A)), (0, submit("a2", A)), (0, submit("a3", A))],
        [(0, "a1", FS), (10, "a2", FS), (50, "a3", FS)],
        id="queue_fixed_period_job_starts_when_the_next_period_begins",
    ),
    pytest.param(
        {"allocations": [allocation(A, 15, period=(0, 200))], "usage_window": 30},
        [(0, submit("a1", A)), (0, submit("a2", A)), (0, submit("a3", A))],
        # the window forgets the charges at 40 and 50; the period counts them
        [(0, "a1", FS), (10, "a2", FS), (200, "a3", FS)],
        id="fixed_period_longer_than_the_window_keeps_counting",
    ),
    pytest.param(
        {"usage": {A: 1000}, "allocations": [allocation(A, 15, period=(100, 50))]},
        [(0, submit("a1", A)), (0, submit("a2", A)), (0, submit("a3", A)), (100, submit("a4", A))],
        # nothing counts before the first period, nor a charge that ended before it
        [(0, "a1", FS), (10, "a2", FS), (20, "a3", FS), (100, "a4", FS)],
        id="fixed_period_counts_nothing_before_its_start",
    ),
    pytest.param(
        {"usage": {A: 10}, "allocations": [allocation("hubA", 10)], "usage_window": 100},
        [(0, submit("a1", A)), (0, submit("a2", A2)), (1, submit("b1", B))],
        # the hub is exhausted: both its projects wait; a1 runs once the prior
        # charge leaves (100), which exhausts the hub again until 210
        [(1, "b1", FS), (100, "a1", FS), (210, "a2", FS)],
        id="exhausted_hub_keeps_every_project_below_it_out",
    ),
    pytest.param(
        {"usage": {B: 100, A: 5}, "allocations": [allocation("hubA/g", 5)]},
        [(0, submit("a1", A)), (0, submit("b1", B)), (1, submit("a2", A2))],
        # hubA has the lower usage but no eligible job at 0; at 10 it has one (g2);
        # a1 waits until the prior charge leaves the (default) window
        [(0, "b1", FS), (10, "a2", FS), (2419200, "a1", FS)],
        id="descent_chooses_among_children_that_have_an_eligible_job",
    ),
    pytest.param(
        {"paused": ["a"], "allocations": [allocation(A_P1, 0)]},
        [
            (0, submit("a_old", A_P1)),
            (1, submit("b", B)),
            (2, submit("a_new", A_P2)),
            (3, resume()),
        ],
        # hubA and hubB tie at 0 usage: the tie goes to the oldest *eligible* job (b)
        [(3, "b", FS), (13, "a_new", FS)],
        id="ties_go_to_the_child_holding_the_oldest_eligible_job",
    ),
    pytest.param(
        {"allocations": [allocation(A, 10)]},
        [
            (0, start_session("s1", "s", A)),
            (5, submit("b1", B)),
            (20, session_job("s2", "s", A)),
        ],
        # A is exhausted from 10, but its active session keeps its lane and its
        # hold (10..20, then 30..90): b1 waits for the interactive timeout
        [(0, "s1", FS), (20, "s2", SES), (90, "b1", FS)],
        id="active_session_keeps_its_lane_and_hold",
    ),
    pytest.param(
        {"allocations": [allocation(R, 0)], "reservations": [reservation(0, 1000)]},
        [(5, submit("r1", R)), (1000, submit("r2", R))],
        [(5, "r1", RES)],
        id="reservation_lane_is_exempt",
    ),
    pytest.param(
        {"allocations": [allocation(A, 0)]},
        [(0, submit("a1", A)), (50, put_allocation(A, None))],
        [(50, "a1", FS)],
        id="removing_the_allocation_frees_at_that_instant",
    ),
    pytest.param(
        {"allocations": [allocation(A, 0)]},
        [(0, submit("a1", A)), (50, put_allocation(A, 100))],
        [(50, "a1", FS)],
        id="raising_the_allocation_frees_at_that_instant",
    ),
    pytest.param(
        {"usage_window": 100},
        [(0, submit("a1", A)), (15, put_allocation(A, 10)), (15, submit("a2", A))],
        # a1's charge (10, at 10) was made before the allocation existed
        [(0, "a1", FS), (110, "a2", FS)],
        id="a_new_allocation_counts_charges_from_before_it",
    ),
    pytest.param(
        {"usage_window": 100},
        [(0, submit("a1", A)), (0, submit("a2", A)), (5, put_allocation(A, 10))],
        # a1 still runs at 5 and is charged at its end (10): a2 waits from then
        [(0, "a1", FS), (110, "a2", FS)],
        id="a_running_job_counts_when_it_ends",
    ),
    # ------------------------------------------------------------------- safe
    pytest.param(
        {"allocations": [allocation(A, 30, "safe")]},
        [
            (0, submit("a1", A, duration=40)),
            (0, submit("a2", A, duration=20)),
            (25, submit("a3", A, duration=10)),
        ],
        # a1 never fits (40 > 30) and blocks neither a2 nor a3 (20 + 10 <= 30)
        [(0, "a2", FS), (25, "a3", FS)],
        id="safe_job_that_does_not_fit_does_not_block_a_later_one",
    ),
    pytest.param(
        {"allocations": [allocation(A, 30, "safe")], "usage_window": 100},
        [(0, submit("a1", A, duration=20)), (0, submit("a2", A, duration=20))],
        [(0, "a1", FS), (120, "a2", FS)],
        id="safe_job_starts_when_enough_charges_leave_for_it_to_fit",
    ),
    pytest.param(
        {"allocations": [allocation(A, 30, "safe")]},
        [
            (0, submit("long", A, duration=100, max_execution_time=20)),
            (0, submit("a2", A, duration=10)),
        ],
        # the long job can run 20 (its limit): it fits, and fails at its limit
        [(0, "long", FS), (20, "a2", FS)],
        id="safe_counts_the_duration_capped_at_the_runtime_limit",
    ),
    pytest.param(
        {"allocations": [allocation(A, 30, "safe")]},
        [
            (0, submit("unknown", A, duration=None)),
            (0, submit("limited", A, duration=None, max_execution_time=25)),
        ],
        # without a known duration a job counts its runtime limit (10800 / 25)
        [(0, "limited", FS)],
        id="safe_counts_the_runtime_limit_of_a_job_without_a_duration",
    ),
    pytest.param(
        {"allocations": [allocation(A, 30, "safe")]},
        [
            (0, create("s", A)),
            (0, session_job("j1", "s", duration=40)),
            (0, session_job("j2", "s", duration=10)),
        ],
        # j2 fits and activates the session; its lane is exempt, so j1 follows
        [(0, "j2", FS), (10, "j1", SES)],
        id="safe_later_session_job_that_fits_activates_its_session",
    ),
    pytest.param(
        {
            "allocations": [allocation(A, 100, "safe"), allocation("hubA", 30, "queue")],
            "usage_window": 100,
        },
        [(0, submit("a1", A, duration=40)), (0, submit("a2", A, duration=20))],
        # only safe nodes ask for the fit: the hub's queue node lets a1 (40 > 30) start
        [(0, "a1", FS), (140, "a2", FS)],
        id="safe_fit_is_asked_only_by_safe_nodes",
    ),
    # ----------------------------------------------------------------- refuse
    pytest.param(
        {"allocations": [allocation(A, 10, "refuse")], "usage_window": 100},
        [(0, submit("x", A)), (0, submit("queued", A)), (50, submit("y", A))],
        # jobs already queued wait (refuse is as queue); y is refused and never runs
        [(0, "x", FS), (110, "queued", FS)],
        id="refuse_keeps_jobs_already_queued_waiting",
    ),
]


@pytest.mark.parametrize(("setup", "script", "expected"), STARTS)
def test_starts(setup: dict[str, Any], script: list[Any], expected: list[Any]) -> None:
    policy = make_policy(**setup)
    timeline(policy, script)
    assert starts(policy) == expected


def test_an_instant_that_frees_a_job_touches_nothing_by_itself() -> None:
    policy = make_policy(
        paused=["a"], usage={A: 50}, allocations=[allocation(A, 50)], usage_window=100
    )
    timeline(policy, [(10, submit("a1", A))])
    # the backend is paused at 100, when a1 becomes eligible: nothing happens there
    assert policy.jobs["a1"].status == "Queued"
    assert policy.last_activity is None
    assert policy.next_due() is None


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param({"allocations": [allocation(A, 0)]}, id="zero_rolling"),
        pytest.param({"allocations": [allocation(A, 0, period=(0, 50))]}, id="zero_fixed"),
        pytest.param({"allocations": [allocation(A, 0, period=(100, 50))]}, id="zero_before_start"),
        pytest.param({"allocations": [allocation(A, 5, "safe", period=(0, 50))]}, id="never_fits"),
    ],
)
def test_a_job_that_never_frees_leaves_nothing_due(setup: dict[str, Any]) -> None:
    policy = make_policy(**setup)
    timeline(policy, [(0, submit("a1", A))])
    assert policy.jobs["a1"].status == "Queued"
    assert policy.next_due() is None


def test_exhausted_allocation_keeps_an_open_session_open() -> None:
    policy = make_policy(usage={A: 10}, allocations=[allocation(A, 10)])
    timeline(
        policy,
        [(0, create("s", A)), (1, session_job("j1", "s")), (2, submit("b1", B))],
        until=2000,  # past the open timeout (1800): it finds a job queued
    )
    assert starts(policy) == [(2, "b1", FS)]
    assert policy.sessions["s"].state == "open"


def test_exhausted_allocation_keeps_an_inactive_session_inactive() -> None:
    policy = make_policy(allocations=[allocation(A, 10)])
    timeline(
        policy,
        [(0, start_session("s1", "s", A)), (100, session_job("s2", "s")), (100, submit("b1", B))],
        until=200,
    )
    assert starts(policy) == [(0, "s1", FS), (100, "b1", FS)]
    assert policy.sessions["s"].state == "inactive"
    assert policy.jobs["s2"].status == "Queued"


# ----------------------------------------------------------------- refusals
def test_refuse_refuses_submissions_and_session_creations() -> None:
    policy = make_policy(usage={A: 10}, allocations=[allocation(A, 10, "refuse")])
    outcomes = timeline(
        policy,
        [
            (0, submit("a1", A)),
            (0, start_session("a2", "s1", A)),
            (0, create("s2", A)),
            (1, session_job("a3", "s1")),
            (1, session_job("a4", "s2")),
            (1, submit("b1", B)),
        ],
    )
    codes = [(o.accepted, o.code) for o in outcomes]
    assert codes == [
        (False, ALLOCATION_EXHAUSTED),
        (False, ALLOCATION_EXHAUSTED),
        (False, ALLOCATION_EXHAUSTED),
        (False, "unknown_session"),  # the refusals created no session
        (False, "unknown_session"),
        (True, None),
    ]
    assert set(policy.sessions) == set()
    assert set(policy.jobs) == {"b1"}


@pytest.mark.parametrize("enforce", ["queue", "safe"])
def test_queue_and_safe_never_refuse(enforce: str) -> None:
    policy = make_policy(usage={A: 10}, allocations=[allocation(A, 10, enforce)])
    outcomes = timeline(policy, [(0, submit("a1", A)), (0, create("s", A))], until=10)
    assert all(o.accepted for o in outcomes)
    assert policy.jobs["a1"].status == "Queued"


def test_allocation_refusal_comes_after_the_other_refusals() -> None:
    policy = make_policy("a", "b", allocations=[allocation(A, 10, "refuse")])
    outcomes = timeline(
        policy,
        [
            (0, create("s", A)),
            (0, create("closed", A)),
            (0, close("closed")),
            (0, submit("x", A)),  # runs 0..10: A is exhausted from 10
            (10, submit("y1", A, backend="nowhere")),
            (10, create("s3", A, backend="nowhere")),
            (10, session_job("y2", "nope")),
            (10, submit("y3", A, backend="b", session="s")),
            (10, session_job("y4", "s", instance=B)),
            (10, session_job("y5", "closed")),
            (10, session_job("y6", "s")),
            (10, create("s4", A)),
        ],
    )
    assert [o.code for o in outcomes[4:]] == [
        "unknown_backend",
        "unknown_backend",
        "unknown_session",
        "backend_mismatch",
        "instance_mismatch",
        "session_closed",
        ALLOCATION_EXHAUSTED,
        ALLOCATION_EXHAUSTED,
    ]


def test_consumed_at_an_instant_counts_its_ends_and_not_the_charges_that_left() -> None:
    policy = make_policy(allocations=[allocation(A, 10, "refuse")], usage_window=100)
    outcomes = timeline(
        policy,
        [
            (0, submit("x", A)),  # charged 10 at 10
            (10, submit("y", A)),  # step 2 at 10 sees the end of step 1
            (110, submit("z", A)),  # the charge left at 110: accepted, starts at once
        ],
    )
    assert [o.code for o in outcomes] == [None, ALLOCATION_EXHAUSTED, None]
    assert starts(policy) == [(0, "x", FS), (110, "z", FS)]


def test_replacing_an_allocation_changes_its_mode() -> None:
    policy = make_policy(allocations=[allocation(A, 0)])
    outcomes = timeline(
        policy,
        [
            (0, submit("a1", A)),
            (5, put_allocation(A, 0, "refuse")),
            (6, submit("a2", A)),
            (7, put_allocation(B, None)),  # no allocation there: nothing changes
        ],
    )
    assert [o.accepted for o in outcomes] == [True, True, False, True]
    assert policy.allocations.get(A) is not None
    assert policy.allocations.get(A).enforce == "refuse"  # type: ignore[union-attr]
    assert [e.kind for e in policy.events if e.kind == "allocation_changed"] == [
        "allocation_changed"
    ]


def test_safe_reads_the_runtime_limit_when_it_checks() -> None:
    policy = make_policy(allocations=[allocation(A, 30, "safe")])
    timeline(
        policy,
        [
            (0, submit("a1", A, duration=None)),  # counts the backend limit: 10800
            (5, PutBackend("a", max_runtime=25)),  # now it counts 25, at the pick of 5
        ],
    )
    assert starts(policy) == [(5, "a1", FS)]


def test_hold_charged_by_one_backend_exhausts_the_node_for_the_next() -> None:
    # At 70 backend "a" ends s's hold (10..70) when it starts r1 in the window that
    # opened then: the charge of 60 exhausts A (10 + 60 >= 65) before "b" picks.
    policy = make_policy(
        "a",
        "b",
        allocations=[allocation(A, 65)],
        reservations=[reservation(70, 1000)],
        paused=["b"],
        interactive_ttl=100,
    )
    timeline(
        policy,
        [
            (0, start_session("s1", "s", A)),
            (5, submit("r1", R)),
            (70, submit("a_on_b", A, backend="b")),
            (70, resume("b")),
        ],
        until=100,
    )
    assert starts(policy) == [(0, "s1", FS), (70, "r1", RES)]
    assert usage_at(policy, A, 70) == 70
    assert policy.jobs["a_on_b"].status == "Queued"


def test_rolling_consumption_is_the_usage_of_the_window() -> None:
    policy = make_policy(usage={A: 5}, allocations=[allocation("hubA", 1000)], usage_window=100)
    timeline(
        policy, [(0, submit("a1", A)), (50, start_session("a2", "s", A2, duration=20))], until=50
    )
    for t in (70, 99, 100, 130, 149, 150, 200):
        run_until_idle(policy, until=t)
        assert policy.allocations.consumed("hubA", t) == usage_at(policy, "hubA", t)


# ------------------------------------------------------------------ answers
def _reason(policy: Any, job: str, now: int) -> dict[str, Any] | None:
    plan = make_plan(policy, now)
    entry = plan.entries[job]
    session = policy.jobs[job].session
    reasons = wait_reasons(
        plan.backends[entry.backend],
        entry,
        instance=policy.jobs[job].instance,
        session=session.id if session else None,
        session_state=session.state if session else None,
    )
    found = [r.data for r in reasons if r.code == ALLOCATION_EXHAUSTED]
    assert len(found) <= 1
    assert (entry.allocation is None) == (not found)
    return dict(found[0]) if found else None


REASONS: list[Any] = [
    pytest.param(
        {"usage": {A: 50}, "allocations": [allocation(A, 50)], "usage_window": 100},
        [(10, submit("a1", A))],
        10,
        {"node": A, "enforce": "queue", "consumed": 50, "seconds": 50, "needs": 0, "frees": 100},
        id="queue_rolling",
    ),
    pytest.param(
        {"allocations": [allocation(A, 15, period=(0, 50))]},
        [(0, submit("a1", A)), (0, submit("a2", A)), (0, submit("a3", A))],
        20,
        {"node": A, "enforce": "queue", "consumed": 20, "seconds": 15, "needs": 0, "frees": 50},
        id="queue_fixed_frees_at_the_next_period",
    ),
    pytest.param(
        {"allocations": [allocation(A, 30, "safe")], "usage_window": 100},
        [(0, submit("a1", A, duration=20)), (0, submit("a2", A, duration=20))],
        20,
        {"node": A, "enforce": "safe", "consumed": 20, "seconds": 30, "needs": 20, "frees": 120},
        id="safe_frees_when_the_job_fits",
    ),
    pytest.param(
        {"allocations": [allocation(A, 30, "safe")]},
        [(0, submit("a1", A, duration=40))],
        0,
        {"node": A, "enforce": "safe", "consumed": 0, "seconds": 30, "needs": 40, "frees": None},
        id="safe_never_fits",
    ),
    pytest.param(
        {
            "usage": {A: 50},
            "allocations": [allocation(A, 50, "safe"), allocation("hubA", 40, period=(0, 500))],
            "usage_window": 100,
        },
        [(10, submit("a1", A))],
        10,
        # both block; the hub frees last (its next period), so it is the one named
        {
            "node": "hubA",
            "enforce": "queue",
            "consumed": 50,
            "seconds": 40,
            "needs": 0,
            "frees": 500,
        },
        id="the_node_that_frees_last_is_named",
    ),
    pytest.param(
        {"allocations": [allocation(A, 0)]},
        [(0, start_session("a1", "s", A))],
        0,
        {"node": A, "enforce": "queue", "consumed": 0, "seconds": 0, "needs": 0, "frees": None},
        id="open_session_job",
    ),
]


@pytest.mark.parametrize(("setup", "script", "now", "expected"), REASONS)
def test_wait_reason(
    setup: dict[str, Any], script: list[Any], now: int, expected: dict[str, Any]
) -> None:
    policy = make_policy(**setup)
    timeline(policy, script, until=now)
    job = script[-1][1].job
    assert _reason(policy, job, now) == expected


def test_no_reason_for_the_session_lane_or_the_reservation_lane() -> None:
    policy = make_policy(
        "a",
        "b",
        allocations=[allocation(A, 10), allocation(R, 0)],
        reservations=[reservation(0, 1000)],
    )
    timeline(
        policy,
        [
            (0, start_session("s1", "s", A, backend="b")),  # A exhausted from 10; s active
            (0, submit("r0", R, duration=100)),
            (1, session_job("s2", "s", backend="b")),
            (1, session_job("s3", "s", backend="b")),
            (1, submit("r1", R)),
        ],
        until=15,
    )
    assert _reason(policy, "s3", 15) is None
    assert _reason(policy, "r1", 15) is None
    assert policy.allocations.consumed(A, 15) == 10


def test_plan_estimates_the_start_at_the_instant_the_job_frees() -> None:
    policy = make_policy(usage={A: 10}, allocations=[allocation(A, 10)], usage_window=100)
    timeline(policy, [(10, submit("a1", A)), (10, submit("a2", A))], until=10)
    plan = make_plan(policy, 10)
    # a1 frees at 100 and runs to 110, which exhausts A again until the charge
    # ended at 110 leaves (210)
    assert (plan.entries["a1"].position, plan.entries["a1"].start) == (1, 100)
    assert (plan.entries["a2"].position, plan.entries["a2"].start) == (2, 210)
    assert plan.backends["a"].allocation_blocked == 2
    assert list(policy.allocations.items[A].charges) == [(0, 10)]  # the replay ran on a copy
    run_until_idle(policy)
    assert [(t, job) for t, job, _ in starts(policy)] == [(100, "a1"), (210, "a2")]


def test_status_lists_each_allocation_with_its_period() -> None:
    policy = make_policy(
        usage={A: 30},
        allocations=[allocation(A, 50), allocation("hubA", 20, "safe", period=(10, 100))],
    )
    timeline(policy, [(0, submit("a1", A))], until=150)
    assert policy.allocations.status(150) == [
        {
            "node": "hubA",
            "seconds": 20,
            "enforce": "safe",
            "period": (10, 100),
            "consumed": 0,
            "exhausted": False,
            "period_start": 110,
            "period_end": 210,
        },
        {
            "node": A,
            "seconds": 50,
            "enforce": "queue",
            "period": None,
            "consumed": 40,
            "exhausted": False,
            "period_start": None,
            "period_end": None,
        },
    ]


def test_the_what_if_of_an_allocation_change_leaves_the_state_alone() -> None:
    policy = make_policy(allocations=[allocation(A, 0)])
    timeline(policy, [(0, submit("a1", A)), (0, submit("b1", B, duration=100))], until=5)
    without, with_ = futures.compare(
        policy,
        futures.Scenario(now=5, end=500, hour=3600),
        [put_allocation(A, None)],
    )
    started = {run.id: run.started for run in without.jobs}
    assert started == {"a1": None, "b1": 0}
    assert {run.id: run.started for run in with_.jobs} == {"a1": 100, "b1": 0}
    assert policy.allocations.get(A) is not None and policy.jobs["a1"].status == "Queued"


def test_forgetting_charges_keeps_what_the_window_and_current_periods_count() -> None:
    policy = make_policy(allocations=[allocation("hubA", 100, period=(0, 1000))], usage_window=50)
    timeline(policy, [(0, submit("a1", A)), (0, submit("b1", B)), (600, submit("b2", B))])
    run_until_idle(policy, until=1100)
    policy.forget_charges()  # the period [1000, 2000) and the window (1050, 1100] count
    assert [end for end, _, _ in policy.usage.history()] == []
    assert policy.usage.forgotten == 1000
    policy = make_policy(allocations=[allocation("hubA", 100, period=(0, 1000))], usage_window=50)
    timeline(policy, [(0, submit("a1", A)), (0, submit("b1", B)), (600, submit("b2", B))])
    run_until_idle(policy, until=900)
    policy.forget_charges()  # [0, 1000) still counts a1's charge (at 10)
    assert [end for end, _, _ in policy.usage.history()] == [10, 20, 610]
    assert policy.allocations.consumed("hubA", 900) == 10

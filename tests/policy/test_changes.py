"""Operator changes at an instant: reservations added, moved and deleted, shares, backends."""

from __future__ import annotations

from scheduler.policy.model import PutBackend, PutReservation, RemoveReservation, SetShare

from .helpers import A, B, R, make_policy, outcome_of, session_job, start_session, starts, submit
from .helpers import timeline as run


def put(start: int, end: int, *, exclusive: bool = False, rid: str = "r1", instance: str = R):
    return PutReservation("a", instance, rid, start, end, exclusive)


def test_a_reservation_added_ahead_opens_at_its_start() -> None:
    policy = make_policy()
    run(policy, [(0, put(50, 100)), (60, submit("a1", A)), (61, submit("r1", R))], until=200)
    assert policy.reservations["r1"].ended
    assert starts(policy) == [(60, "a1", "fair_share"), (70, "r1", "reservation")]


def test_a_reservation_added_inside_its_window_opens_at_once() -> None:
    policy = make_policy()
    script = [(0, submit("x", A, duration=100)), (1, submit("a1", A)), (2, submit("r1", R))]
    run(policy, [*script, (10, put(0, 500))], until=20)
    assert policy.backends["a"].reservation is policy.reservations["r1"]
    run(policy, [], until=600)
    assert starts(policy)[1:] == [(100, "r1", "reservation"), (110, "a1", "fair_share")]


def test_moving_the_end_earlier_ends_the_window_and_its_bound_sessions_at_once() -> None:
    policy = make_policy()
    run(
        policy,
        [(0, put(0, 1000)), (10, start_session("j1", "s", R)), (15, session_job("j2", "s", R))],
        until=12,
    )
    assert policy.sessions["s"].bound_reservation == "r1"
    run(policy, [(12, put(0, 5))], until=12)
    assert policy.reservations["r1"].ended and policy.backends["a"].reservation is None
    assert policy.sessions["s"].closed_reason == "reservation_ended"
    assert outcome_of(policy, "j1")[0] == "Running"  # a running job finishes


def test_a_window_not_yet_open_can_move_its_start() -> None:
    policy = make_policy()
    run(policy, [(0, put(100, 200)), (10, put(20, 200)), (25, submit("r1", R))], until=30)
    assert starts(policy) == [(25, "r1", "reservation")]


def test_deleting_an_open_window_releases_the_backend_and_keeps_bound_sessions() -> None:
    policy = make_policy()
    script = [
        (0, put(0, 1000, exclusive=True)),
        (10, start_session("j1", "s", R)),
        (11, submit("a1", A)),
    ]
    run(policy, script, until=25)
    assert starts(policy) == [(10, "j1", "reservation")]  # exclusive: a1 waits
    run(policy, [(80, RemoveReservation("r1"))], until=2000)
    session = policy.sessions["s"]
    assert session.bound_reservation is None and session.closed_reason != "reservation_ended"
    assert starts(policy)[1] == (80, "a1", "fair_share")


def test_turning_a_window_exclusive_ends_the_hold_of_another_instances_session() -> None:
    policy = make_policy()
    run(policy, [(0, put(0, 1000)), (10, start_session("j1", "s", A))], until=30)
    assert policy.backends["a"].hold_session is policy.sessions["s"]  # held since 20
    instant = policy.run_instant(30, [put(0, 1000, exclusive=True)])
    assert policy.backends["a"].hold_session is None
    assert [(c.instance, c.amount) for c in instant.charges] == [(A, 10)]


def test_a_share_change_reorders_the_fair_share_lane() -> None:
    policy = make_policy(usage={A: 10, B: 200})
    run(policy, [(0, submit("x", A, duration=100)), (1, submit("a1", A)), (2, submit("b1", B))])
    first = starts(policy)[1][1]
    other = make_policy(usage={A: 10, B: 200})
    run(
        other,
        [(0, submit("x", A, duration=100)), (1, submit("a1", A)), (2, submit("b1", B))],
        until=50,
    )
    run(other, [(50, SetShare("hubB", 4))])
    assert (first, starts(other)[1][1]) == ("a1", "b1")


def test_a_new_backend_takes_jobs_and_a_changed_limit_applies_to_later_starts() -> None:
    policy = make_policy()
    (outcome,) = policy.run_instant(0, [submit("k1", A, backend="b")]).outcomes
    assert outcome.code == "unknown_backend"
    run(policy, [(1, PutBackend("b", max_runtime=5)), (2, submit("k2", A, backend="b"))])
    assert outcome_of(policy, "k2") == ("Failed", 2, 7, "max_execution_time_exceeded")


def test_forget_drops_finished_jobs_and_closed_sessions_only() -> None:
    policy = make_policy()
    run(policy, [(0, start_session("j1", "s", A, duration=10)), (1, submit("j2", A))], until=5)
    policy.run_instant(5, [])
    from scheduler.policy.model import CancelSession

    instant = policy.run_instant(6, [CancelSession("s")])
    policy.forget([policy.jobs["j1"], policy.jobs["j2"]], [policy.sessions["s"]])
    assert set(policy.jobs) == {"j1", "j2"} and "s" in policy.sessions  # j1 still runs
    instant = policy.run_instant(20, [])
    ended = [e.subject for e in instant.events if e.kind == "job_ended"]
    policy.forget(ended, [policy.sessions["s"]])
    assert "j1" not in policy.jobs and "s" not in policy.sessions

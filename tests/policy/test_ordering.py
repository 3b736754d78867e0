"""Order of events at one instant (docs/rules.md, "One instant")."""

from __future__ import annotations

from scheduler.policy.model import SESSION_EXPIRED

from .helpers import (
    A,
    B,
    C,
    R,
    cancel,
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


def test_job_end_applies_before_cancel_at_same_instant() -> None:
    policy = make_policy()

    timeline(policy, [(0, submit("j1")), (10, cancel("j1"))])

    assert outcome_of(policy, "j1") == ("Completed", 0, 10, None)


def test_job_end_is_charged_before_picks_at_same_instant() -> None:
    policy = make_policy()
    script = [
        (0, submit("a1", A, duration=10)),
        (5, submit("a2", A)),
        (10, submit("b1", B)),  # arrives as a1 ends: hubA has used 10 by then
    ]

    timeline(policy, script)

    assert [job for _, job, _ in starts(policy)] == ["a1", "b1", "a2"]


def test_submission_and_cancel_at_same_instant_apply_in_arrival_order() -> None:
    policy = make_policy()

    timeline(policy, [(0, submit("j1")), (0, cancel("j1")), (0, submit("j2"))])

    assert outcome_of(policy, "j1") == ("Cancelled", None, 0, None)
    assert starts(policy) == [(0, "j2", "fair_share")]


def test_session_job_ending_at_instant_lets_submission_there_keep_session_active() -> None:
    policy = make_policy(interactive_ttl=0)
    script = [(0, start_session("j1", "s")), (10, session_job("j2", "s")), (10, submit("x", B))]

    timeline(policy, script)

    # The interactive timeout (0 s) starts when j1 ends at 10; j2 arrives at 10,
    # in time; so j2 runs in the session lane before x.
    assert starts(policy) == [
        (0, "j1", "fair_share"),
        (10, "j2", "session"),
        (20, "x", "fair_share"),
    ]


def test_zero_interactive_timeout_fires_at_the_job_end_instant() -> None:
    policy = make_policy(interactive_ttl=0)

    timeline(policy, [(0, start_session("j1", "s")), (1, submit("x", B))])

    assert policy.sessions["s"].history[:3] == [(0, "open"), (0, "active"), (10, "inactive")]
    assert outcome_of(policy, "x")[1] == 10


def test_submission_at_max_ttl_instant_is_accepted_then_fails() -> None:
    policy = make_policy()
    script = [
        (0, create("s", max_ttl=100)),
        (0, session_job("j1", "s", duration=150)),
        (100, session_job("j2", "s")),
    ]

    outcomes = timeline(policy, script)

    assert outcomes[2].accepted
    assert outcome_of(policy, "j2") == ("Failed", None, 100, SESSION_EXPIRED)


def test_submission_at_reservation_end_instant_is_accepted_then_fails() -> None:
    policy = make_policy(reservations=[reservation(0, 100)])
    script = [
        (0, start_session("j1", "s", R, duration=150)),
        (100, session_job("j2", "s", R)),
    ]

    outcomes = timeline(policy, script)

    assert outcomes[1].accepted
    assert outcome_of(policy, "j2") == ("Failed", None, 100, "reservation_ended")


def test_job_ending_at_max_ttl_instant_completes_and_queued_job_fails() -> None:
    policy = make_policy()
    script = [
        (0, create("s", max_ttl=100)),
        (0, session_job("j1", "s", duration=100)),
        (1, session_job("j2", "s")),
    ]

    timeline(policy, script)

    assert outcome_of(policy, "j1") == ("Completed", 0, 100, None)
    assert outcome_of(policy, "j2") == ("Failed", None, 100, SESSION_EXPIRED)


def test_max_ttl_fires_before_interactive_timeout_at_same_instant() -> None:
    policy = make_policy()

    timeline(policy, [(0, create("s", max_ttl=70)), (0, session_job("j1", "s"))])

    assert policy.sessions["s"].history == [(0, "open"), (0, "active"), (70, "closed")]
    assert policy.sessions["s"].closed_reason == "expired"


def test_timers_due_at_one_instant_fire_in_documented_order() -> None:
    policy = make_policy(
        "a",
        "b",
        "c",
        "d",
        open_timeout=100,
        reservations=[
            reservation(50, 100, backend="d", id="r_end"),
            reservation(100, 200, backend="c", id="r_start"),
        ],
    )
    script = [
        (0, create("s_ttl", A, "a", max_ttl=100)),
        (0, session_job("j1", "s_ttl", A)),  # max TTL at 100
        (30, start_session("j2", "s_int", B, backend="b")),  # interactive timeout at 100
        (0, create("s_open", C, "c")),  # open timeout at 100
    ]

    timeline(policy, script, until=100)

    fired = [
        (e.detail["timer"], e.subject.id)
        for e in policy.events
        if e.kind == "timer_fired" and e.at == 100
    ]
    assert fired == [
        ("max_ttl", "s_ttl"),
        ("interactive_timeout", "s_int"),
        ("open_timeout", "s_open"),
        ("reservation_start", "r_start"),
        ("reservation_end", "r_end"),
    ]


def test_free_backends_pick_in_name_order() -> None:
    policy = make_policy("b", "c", "a")

    policy.run_instant(
        0, [submit("jc", backend="c"), submit("ja", backend="a"), submit("jb", backend="b")]
    )

    assert [job for _, job, _ in starts(policy)] == ["ja", "jb", "jc"]


def test_instants_between_calls_are_processed_in_time_order() -> None:
    policy = make_policy()
    policy.run_instant(0, [submit("j1", duration=10), submit("j2", duration=10)])
    policy.run_instant(1, [submit("j3", duration=10)])

    policy.run_instant(100)

    assert starts(policy) == [
        (0, "j1", "fair_share"),
        (10, "j2", "fair_share"),
        (20, "j3", "fair_share"),
    ]
    assert policy.next_due() is None


def test_hold_charged_by_one_backends_pick_counts_for_next_backends_pick() -> None:
    # Backend "a" picks first (name order): its session job ends sA's hold
    # (10..50, charged 40 to hubA) before backend "b" chooses between hubA
    # (10 run + 40 hold = 50) and hubB (30 prior).
    policy = make_policy("a", "b", usage={B: 30})
    script = [
        (0, start_session("j1", "sA", A)),
        (0, submit("c1", C, "b", duration=50)),
        (1, submit("a_on_b", A, "b")),
        (2, submit("b_on_b", B, "b")),
        (50, session_job("j2", "sA", A)),
    ]

    timeline(policy, script)

    assert starts(policy, "b")[1:] == [(50, "b_on_b", "fair_share"), (60, "a_on_b", "fair_share")]


def test_without_the_hold_charge_the_other_instance_would_go_first() -> None:
    policy = make_policy("a", "b", usage={B: 30})
    script = [
        (0, submit("j1", A)),
        (0, submit("c1", C, "b", duration=50)),
        (1, submit("a_on_b", A, "b")),
        (2, submit("b_on_b", B, "b")),
    ]

    timeline(policy, script)

    assert starts(policy, "b")[1:] == [(50, "a_on_b", "fair_share"), (60, "b_on_b", "fair_share")]


def test_cancel_at_the_instant_a_job_would_start_wins() -> None:
    policy = make_policy()

    timeline(policy, [(0, submit("j1")), (1, submit("j2")), (2, submit("j3")), (10, cancel("j2"))])

    assert outcome_of(policy, "j2") == ("Cancelled", None, 10, None)
    assert starts(policy) == [(0, "j1", "fair_share"), (10, "j3", "fair_share")]

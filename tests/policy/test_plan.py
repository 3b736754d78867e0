"""Answers about waiting jobs: the lane, lane depths, jobs ahead, why a job waits."""

from __future__ import annotations

from scheduler.policy import lane_depths, make_plan, wait_reasons, waiting_lane
from scheduler.policy.model import PutReservation

from .helpers import A, B, R, create, make_policy, pause, session_job, start_session, submit
from .helpers import timeline as run


def lanes(policy, backend="a"):
    state = policy.backends[backend]
    return {
        uid: waiting_lane(state, job) for uid, job in policy.jobs.items() if job.status == "Queued"
    }


def test_lanes_and_depths_follow_the_window_and_the_active_session() -> None:
    policy = make_policy()
    script = [
        (0, start_session("s1", "s", A, duration=50)),
        (1, session_job("s2", "s", A)),
        (2, submit("a1", A)),
        (3, submit("r1", R)),
        (4, submit("b1", B)),
    ]
    run(policy, script, until=5)
    assert lanes(policy) == {
        "s2": "session",
        "a1": "fair_share",
        "r1": "fair_share",
        "b1": "fair_share",
    }
    assert lane_depths(policy, "a") == {"reservation": 0, "session": 1, "fair_share": 3}
    run(policy, [(6, PutReservation("a", R, "w", 6, 100))], until=6)
    assert lanes(policy)["r1"] == "reservation"
    assert lane_depths(policy, "a") == {"reservation": 1, "session": 1, "fair_share": 2}


def test_the_active_sessions_jobs_count_in_the_reservation_lane_of_their_instance() -> None:
    policy = make_policy()
    run(
        policy,
        [
            (0, PutReservation("a", R, "w", 0, 1000)),
            (1, start_session("j1", "s", R, duration=50)),
            (2, session_job("j2", "s", R)),
            (3, submit("j3", R)),
        ],
        until=5,
    )
    assert lanes(policy) == {"j2": "reservation", "j3": "reservation"}
    assert lane_depths(policy, "a") == {"reservation": 2, "session": 0, "fair_share": 0}


def test_the_plan_counts_jobs_ahead_in_each_lane() -> None:
    policy = make_policy()
    script = [
        (0, start_session("s1", "s", A, duration=50)),
        (1, session_job("s2", "s", A)),
        (2, submit("b1", B)),
        (3, session_job("s3", "s", A)),
        (4, submit("b2", B)),
    ]
    run(policy, script, until=5)
    plan = make_plan(policy, 5)
    got = {uid: (e.lane, e.position, e.start, e.ahead) for uid, e in plan.entries.items()}
    assert got == {
        "s2": ("session", 1, 50, 0),
        "s3": ("session", 2, 60, 1),
        "b1": ("fair_share", 3, 130, 0),  # after the hold: interactive timeout
        "b2": ("fair_share", 4, 140, 1),
    }
    state = plan.backends["a"]
    assert [(h["job"], h["session"], h["start"]) for h in state.head] == [
        ("s2", "s", 50),
        ("s3", "s", 60),
        ("b1", None, 130),
        ("b2", None, 140),
    ]
    assert state.running["job"] == "s1" and state.session["id"] == "s"
    assert state.depths == {"reservation": 0, "session": 2, "fair_share": 2}


def test_a_job_the_replay_never_starts_has_no_position_and_all_of_its_lane_ahead() -> None:
    policy = make_policy()
    run(policy, [(0, pause()), (1, submit("a1", A)), (2, submit("a2", A))], until=5)
    entries = make_plan(policy, 5).entries
    assert [(e.position, e.start, e.ahead) for e in entries.values()] == [(None, None, 0)] * 2


def codes(policy, uid, now):
    plan = make_plan(policy, now)
    job = policy.jobs[uid]
    session = job.session
    return [
        (r.code, dict(r.data))
        for r in wait_reasons(
            plan.backends[job.backend],
            plan.entries[uid],
            instance=job.instance,
            session=session.id if session else None,
            session_state=session.state if session else None,
        )
    ]


def test_reasons_name_the_running_job_the_hold_and_the_jobs_ahead() -> None:
    policy = make_policy()
    run(
        policy,
        [(0, start_session("s1", "s", A)), (1, submit("b1", B)), (2, submit("b2", B))],
        until=12,
    )
    # s1 ended at 10: the session holds the backend until its interactive timeout at 70.
    assert [code for code, _ in codes(policy, "b2", 12)] == ["backend_held", "fair_share_ahead"]
    held = codes(policy, "b1", 12)[0][1]
    assert (held["id"], held["interactive_deadline"], held["holds"]) == ("s", 70, True)
    assert codes(policy, "b2", 12)[1][1] == {"count": 1}


def test_reasons_of_a_paused_backend_and_an_inactive_session() -> None:
    policy = make_policy()
    run(
        policy,
        [
            (0, create("s", A)),
            (1, submit("x", B, duration=100)),
            (2, session_job("j", "s", A)),
            (3, pause()),
        ],
        until=5,
    )
    assert [code for code, _ in codes(policy, "j", 5)] == [
        "backend_paused",
        "backend_busy",
        "session_waiting",
    ]


def test_reasons_of_another_instances_window() -> None:
    policy = make_policy()
    run(policy, [(0, PutReservation("a", R, "w", 0, 100, True)), (1, submit("a1", A))], until=5)
    assert codes(policy, "a1", 5) == [
        ("reserved_for_other", {"id": "w", "instance": R, "end": 100, "exclusive": True})
    ]

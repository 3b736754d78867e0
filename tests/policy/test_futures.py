"""Two futures of one state (docs/what-if.md): the changes apply on copies, with the
live rules; the synthetic load arrives the same in both; metrics tell them apart."""

from __future__ import annotations

import copy

import pytest

from scheduler.policy import futures as f
from scheduler.policy import outcomes as o
from scheduler.policy.model import PutReservation, SetShare

from .helpers import (
    A,
    B,
    C,
    create,
    make_policy,
    pause,
    reservation,
    session_job,
    start_session,
    submit,
)
from .helpers import timeline as run

HOUR = 3600


def scenario(now: int, end: int, **fields: object) -> f.Scenario:
    return f.Scenario(now=now, end=end, hour=HOUR, **fields)  # type: ignore[arg-type]


def rebind_state():
    """At 5: session S (of B) active, s1 running until 30 and s2 queued in it; session T
    (of A) open with a1 queued; A's window r0 [0, 45) opens the way for T at 30."""
    policy = make_policy(reservations=[reservation(0, 45, instance=A, id="r0")])
    script = [
        (0, start_session("s1", "S", B, duration=30)),
        (1, session_job("s2", "S", B, duration=10)),
        (2, create("T", A)),
        (3, session_job("a1", "T", A, duration=20)),
    ]
    run(policy, script, until=5)
    return policy


def test_a_window_that_reactivates_an_active_session_closes_it_at_the_window_end() -> None:
    policy = rebind_state()
    window = PutReservation("a", B, "r1", 45, 200)
    without, with_ = f.compare(policy, scenario(5, 300), [window])

    fates = {fate.id: fate for fate in o.session_fates(without, with_)}
    before, after = fates["S"].fates
    assert (before.bound, before.closed_reason) == (None, None)
    assert (after.bound, after.bound_at) == ("r1", 50)  # re-activated by s2 inside the window
    assert (after.closed_at, after.closed_reason) == (200, "reservation_ended")
    assert fates["T"].fates[0].closed_at == fates["T"].fates[1].closed_at == 45
    assert policy.sessions["S"].state == "active" and "r1" not in policy.reservations


def test_a_share_change_reorders_the_fair_share_lane() -> None:
    policy = make_policy(usage={A: 100, B: 200})
    script = [(0, submit("x", C, duration=100)), (1, submit("a1", A)), (2, submit("b1", B))]
    run(policy, script, until=50)
    without, with_ = f.compare(policy, scenario(50, 400), [SetShare("hubB", 4)])

    def starts(future: f.Future) -> list[tuple[int | None, str]]:
        return sorted((j.started, j.id) for j in future.jobs)

    assert starts(without) == [(0, "x"), (100, "a1"), (110, "b1")]
    assert starts(with_) == [(0, "x"), (100, "b1"), (110, "a1")]


def test_the_state_is_never_changed() -> None:
    policy = rebind_state()
    before = copy.deepcopy(policy)
    load = f.Load(backend="a", instance=C, per_hour=60, work=5)
    f.compare(policy, scenario(5, 300, loads=(load,)), [pause()])
    assert policy.now == before.now == 5
    assert {j.id: j.status for j in policy.jobs.values()} == {
        j.id: j.status for j in before.jobs.values()
    }
    assert policy.backends["a"].status == "online"


def test_synthetic_arrivals_are_deterministic_for_a_seed() -> None:
    load = f.Load(backend="a", instance=C, per_hour=120, work=5)
    first = f.arrivals(scenario(0, 2 * HOUR, loads=(load,), seed=7))
    assert first == f.arrivals(scenario(0, 2 * HOUR, loads=(load,), seed=7))
    assert first != f.arrivals(scenario(0, 2 * HOUR, loads=(load,), seed=8))
    assert 180 < len(first) < 300  # about 240 in two hours
    assert all(0 < a.at <= 2 * HOUR for a in first)


def test_the_same_synthetic_jobs_arrive_in_both_futures() -> None:
    policy = make_policy()
    load = f.Load(backend="a", instance=C, per_hour=30, work=5)
    without, with_ = f.compare(policy, scenario(0, HOUR, loads=(load,), seed=1), [pause()])
    synthetic = {(j.id, j.submitted) for j in without.jobs if j.synthetic}
    assert synthetic == {(j.id, j.submitted) for j in with_.jobs if j.synthetic}
    rows = {row.node: row for row in o.node_rows(without, with_)}
    known, synth = rows[C].stats[o.KNOWN], rows[C].stats[o.SYNTHETIC]
    assert known[0].waiting == known[1].waiting == 0
    assert synth[0].started == len(synthetic) and synth[1].started == 0
    assert synth[1].still_queued == len(synthetic)
    assert rows[C].delta_queued_time(o.KNOWN) == 0 < rows[C].delta_queued_time(o.SYNTHETIC)


def test_an_overhead_change_applies_to_jobs_submitted_afterwards() -> None:
    policy = make_policy()
    run(policy, [(0, submit("q", A, duration=100)), (1, submit("q2", A, duration=10))], until=2)
    load = f.Load(backend="a", instance=C, per_hour=20, work=5)
    sc = scenario(2, 3 * HOUR, loads=(load,), overheads={"a": 1}, seed=3)
    without, with_ = f.compare(policy, sc, [f.SetOverhead("a", 31)])

    def runs(future: f.Future) -> dict[str, int]:
        return {j.id: (j.ended or 0) - (j.started or 0) for j in future.jobs if j.ended}

    assert runs(without)["q2"] == runs(with_)["q2"] == 10
    synthetic = [j for j in runs(without) if j.startswith(f.SYNTHETIC)]
    assert synthetic and all(runs(without)[j] == 6 and runs(with_)[j] == 36 for j in synthetic)


def test_an_exclusive_window_idles_the_backend_and_a_pause_idles_it_all() -> None:
    policy = make_policy()
    run(policy, [(0, submit("a1", A, duration=10)), (0, submit("a2", A, duration=10))], until=0)
    window = PutReservation("a", B, "r1", 100, 200, True)
    without, with_ = f.compare(policy, scenario(0, 400), [window])
    use = o.backend_use(with_)["a"]
    assert (use.busy, use.exclusive_idle, use.held, use.paused) == (20, 100, 0, 0)
    assert use.idle == 380 and use.utilisation == pytest.approx(20 / 400)
    assert o.backend_use(without)["a"].exclusive_idle == 0

    _, paused = f.compare(policy, scenario(5, 405), [pause()])
    use = o.backend_use(paused)["a"]
    assert (use.busy, use.paused, use.started) == (5, 395, 0)  # a1 finishes, a2 never starts


def test_a_session_holding_the_backend_counts_as_held() -> None:
    policy = make_policy(interactive_ttl=60)
    run(policy, [(0, start_session("s1", "S", A, duration=10))], until=0)
    without, _ = f.compare(policy, scenario(0, 100), [])
    use = o.backend_use(without)["a"]
    assert (use.busy, use.held, use.idle) == (10, 60, 90)


@pytest.mark.parametrize(
    ("waits", "q", "expected"),
    [
        ([], 50, (None, False)),
        ([(1, False), (2, False), (3, False), (4, False)], 50, (2, False)),
        ([(1, False), (2, False), (3, False), (4, True)], 95, (4, True)),
        ([(1, False), (2, True), (3, False), (9, False)], 50, (2, True)),
        ([(1, False), (2, False), (3, False), (9, True)], 50, (2, False)),
    ],
)
def test_percentiles_say_when_a_job_still_queued_makes_them_a_lower_bound(
    waits: list[tuple[int, bool]], q: int, expected: tuple[int | None, bool]
) -> None:
    assert o.percentile(waits, q) == expected


def test_wait_stats_count_starts_unstarted_and_queued_time() -> None:
    jobs = [
        f.JobRun("r", A, "a", False, 0, 0, None, 50, "fair_share", "Running", None),
        f.JobRun("s", A, "a", False, 5, 20, 30, None, "fair_share", "Completed", None),
        f.JobRun("u", A, "a", False, 6, None, 40, None, None, "Failed", "session_expired"),
        f.JobRun("q", A, "a", True, 50, None, None, None, None, "Queued", None),
    ]
    stats = o.wait_stats(jobs, 10, 100)
    assert (stats.waiting, stats.started, stats.ended_unstarted, stats.still_queued) == (3, 1, 1, 1)
    assert stats.queued_time == (20 - 10) + (40 - 10) + (100 - 50)
    assert (stats.p50, stats.p50_at_least, stats.p95, stats.p95_at_least) == (15, False, 50, True)


def test_timeline_merges_contiguous_jobs_of_a_lane() -> None:
    policy = make_policy()
    jobs = [submit(f"j{n}", A if n % 2 else B, duration=10) for n in range(6)]
    run(policy, [(0, job) for job in jobs], until=0)
    without, _ = f.compare(policy, scenario(0, 100), [])
    (bar,) = o.timeline(without)["a"]
    assert (bar.start, bar.end, bar.lane, bar.jobs, bar.instances) == (
        0,
        60,
        "fair_share",
        6,
        {A: 3, B: 3},
    )


def test_a_throw_away_state_gives_the_same_futures_in_place() -> None:
    load = f.Load(backend="a", instance=C, per_hour=90, work=5)
    sc = scenario(5, 2 * HOUR, loads=(load,), seed=2)
    window = PutReservation("a", B, "r1", 45, 200)
    copied = f.compare(rebind_state(), sc, [window])
    assert f.compare(rebind_state(), sc, [window], in_place=True) == copied

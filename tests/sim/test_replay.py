"""`manage.py replay`: a live run on a fake clock, rebuilt from its event log and
replayed by the memory engine, gives the trace the live system wrote."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from scheduler import models, services
from scheduler.clock import from_ticks
from scheduler.engine.loop import Scheduler
from scheduler.policy import model as m
from scheduler.sim.compare import first_difference, trace_events
from scheduler.sim.replay import scenario_from_log
from scheduler.sim.scenario import parse_scenario
from scheduler.sim.traces import live_trace, replay_trace
from tests.factories import BackendFactory, instance, queue_job, record
from tests.live_clock import SECOND, FakeClockLive

pytestmark = pytest.mark.django_db

T0 = from_ticks(1_800_000_000_250_000)  # not on a whole second


class Live(FakeClockLive):
    """Backends sim_a and sim_b and a scheduler ticking on a fake clock; a stand-in
    executor finishes each job after its modeled time, and fails those named `bad*`."""

    def __init__(self) -> None:
        super().__init__(T0)
        self.scheduler = self.new_leader()
        BackendFactory(name="sim_a")
        BackendFactory(name="sim_b")
        for path in ("h/a/p", "h/b/p", "h/c/p"):
            instance(path)

    def new_leader(self) -> Scheduler:
        """A scheduler process taking the lead: its leader loads the state from the rows."""
        return Scheduler(clock=self.clock, execute=self._execute, inline=True)

    def _execute(self, program_id: str, params: dict, **options: Any) -> str:
        if params["job"].startswith("bad"):
            raise RuntimeError("the circuit could not be simulated")
        return "{}"

    def submit(self, job: str, seconds: float, *, inst: str = "h/a/p", **extra: Any) -> None:
        queue_job(job, inst=inst, at=self.clock.now(), expected=seconds, **extra)
        self.scheduler.tick()


@pytest.fixture
def live(settings: Any) -> Live:
    settings.QDASH_EAGER_LEADER = False
    settings.QDASH_APPLY_WAIT = 0
    return Live()


def busy_run(live: Live) -> None:
    """Sessions both ways (dedicated and batch, created alone and with a first job), a
    reservation window, cancels of queued and running jobs, a close and a session
    cancel, a pause, an executor failure and two leader changes."""
    reserved = models.Reservation.objects.create(
        backend=models.Backend.objects.get(name="sim_a"),
        instance=instance("h/b/p"),
        start=live.at(30),
        end=live.at(90),
    )
    live.act(m.CreateSession(session="dedicated", instance="h/a/p", backend="sim_a"))
    live.submit("d1", 7.5, session="dedicated")
    live.submit("f1", 12, inst="h/c/p")
    live.submit("f2", 4, inst="h/c/p", backend="sim_b")
    live.clock.set(live.at(1.000001))
    live.act(
        m.CreateSession(
            session="batch", instance="h/c/p", backend="sim_b", mode=m.BATCH, max_ttl=400_000_000
        )
    )
    live.submit("bt1", 3, inst="h/c/p", backend="sim_b", session="batch")
    live.submit("bt2", 3, inst="h/c/p", backend="sim_b", session="batch")
    live.submit("bad1", 5, inst="h/a/p", backend="sim_b")
    live.run_until(20)
    live.submit("d2", 5, session="dedicated", max_execution_time=100)
    live.submit("r1", 10, inst="h/b/p", start_session=True, session="reserved")
    live.submit("r2", 10, inst="h/b/p", session="reserved")
    live.submit("long", 500, inst="h/c/p", backend="sim_b")
    live.run_until(25)

    live.scheduler = live.new_leader()  # a leader change in a busy queue
    live.run_until(33.5)
    services.jobs_cancel(job=live.job("long"), clock=live.clock)  # running
    live.submit("f3", 6, inst="h/a/p")
    live.submit("f4", 6, inst="h/c/p")
    live.clock.set(live.at(34))
    services.jobs_cancel(job=live.job("f4"), clock=live.clock)  # queued
    backend_b = models.Backend.objects.get(name="sim_b")
    services.backends_set_status(backend=backend_b, status=m.PAUSED, clock=live.clock)
    live.submit("b_paused", 2, inst="h/a/p", backend="sim_b")
    live.run_until(50)
    services.backends_set_status(backend=backend_b, status=m.ONLINE, clock=live.clock)
    services.sessions_close(session=models.Session.objects.get(uid="dedicated"), clock=live.clock)
    live.submit("r3", 10, inst="h/b/p", session="reserved")
    live.run_until(70)

    live.scheduler = live.new_leader()  # and another
    live.act(m.CreateSession(session="gone", instance="h/c/p", backend="sim_b"))
    live.submit("g1", 50, inst="h/c/p", backend="sim_b", session="gone")
    live.submit("g2", 50, inst="h/c/p", backend="sim_b", session="gone")
    live.run_until(75)
    services.sessions_cancel(session=models.Session.objects.get(uid="gone"), clock=live.clock)
    live.run_until(400)
    assert reserved.pk


def test_a_live_run_with_failovers_replays_identically(live: Live) -> None:
    busy_run(live)
    # The run did what the test means it to do.
    assert live.job("long").status == m.CANCELLED and live.job("long").started_at
    assert live.job("f4").status == m.CANCELLED and live.job("f4").started_at is None
    assert live.job("bad1").status == m.FAILED and live.job("bad1").error == "execution_failed"
    assert live.job("r1").lane == m.RESERVATION
    assert models.Session.objects.get(uid="reserved").closed_reason == m.CLOSED_RESERVATION_ENDED
    assert models.Session.objects.get(uid="gone").closed_reason == m.CLOSED_CANCELLED
    assert models.Session.objects.get(uid="dedicated").closed_reason == m.CLOSED_BY_USER
    assert models.Session.objects.get(uid="batch").mode == m.BATCH

    out = StringIO()
    call_command("replay", stdout=out)

    jobs = models.Job.objects.count()
    assert out.getvalue().strip() == f"identical: {jobs} jobs, 4 sessions"


def test_the_rebuilt_scenario_takes_inputs_and_run_times_from_the_record(live: Live) -> None:
    busy_run(live)

    document = scenario_from_log()
    scenario = parse_scenario(json.dumps(document))  # a valid scenario

    assert document["origin"] == from_ticks(1_800_000_000_000_000).isoformat()
    submits = {e["submit"]["job"]: e for e in document["events"] if "submit" in e}
    assert submits["d1"]["at"] == 0.25 and submits["d1"]["submit"]["duration"] == 7.5
    assert submits["bt1"]["at"] == 1.250001  # exact to the microsecond
    assert submits["long"]["submit"]["duration"] is None  # cancelled while running
    assert {"at": 34.25, "cancel_job": "f4"} in document["events"]
    assert {"at": 33.75, "cancel_job": "long"} in document["events"]
    assert submits["bad1"]["submit"]["fails"] == "execution_failed"  # its executor failed it
    assert submits["bad1"]["submit"]["duration"] == 0.000001  # reported just after it started
    created = {
        e["create_session"]["session"]: e["create_session"]
        for e in document["events"]
        if "create_session" in e
    }
    assert created["batch"]["mode"] == m.BATCH and created["batch"]["max_ttl"] == 400
    assert "max_ttl" not in created["dedicated"]  # its first job fixed it
    assert [e["backend_status"]["status"] for e in document["events"] if "backend_status" in e] == [
        m.PAUSED,
        m.ONLINE,
    ]
    assert [(r["start"], r["end"]) for r in document["reservations"]] == [(30.25, 90.25)]
    assert scenario.until is not None and document["until"] == live_trace(document)["end_time"]


def test_a_run_cut_off_with_jobs_running_and_queued_replays_up_to_its_last_instant(
    live: Live,
) -> None:
    live.submit("a1", 10)
    live.submit("a2", 10)
    live.submit("b1", 10, inst="h/b/p")
    live.run_until(12)

    trace = live_trace(scenario_from_log())
    assert {j: trace["jobs"][j]["status"] for j in ("a1", "b1", "a2")} == {
        "a1": m.COMPLETED,
        "b1": m.RUNNING,
        "a2": m.QUEUED,
    }
    out = StringIO()
    call_command("replay", "--check", stdout=out)
    assert out.getvalue().strip() == "identical: 3 jobs, 0 sessions"
    quiet = StringIO()
    call_command("replay", "--check", "--quiet", stdout=quiet)
    assert quiet.getvalue() == ""  # scripts read the exit status


def test_a_tampered_start_is_reported_as_the_first_difference(live: Live, tmp_path: Path) -> None:
    busy_run(live)
    moved = live.job("f3")
    started = models.Event.objects.get(kind="job_started", job=moved)
    later = timedelta(seconds=1)
    models.Job.objects.filter(pk=moved.pk).update(
        started_at=moved.started_at + later, ended_at=moved.ended_at + later
    )
    models.Event.objects.filter(pk=started.pk).update(at=started.at + later)

    out = StringIO()
    with pytest.raises(SystemExit) as exit_status:
        call_command("replay", "--check", "--trace", str(tmp_path / "live.json"), stdout=out)

    assert exit_status.value.code == 1
    report = out.getvalue()
    at = (moved.started_at - from_ticks(1_800_000_000_000_000)) / SECOND
    assert report.splitlines()[0].startswith("first difference at event ")
    assert f"expected: job f3 started on sim_a from the fair_share lane at {at:g}" in report
    assert f"live:     job f3 started on sim_a from the fair_share lane at {at + 1:g}" in report
    written = json.loads((tmp_path / "live.json").read_text())
    assert written["jobs"]["f3"]["started_at"] == at + 1


def test_a_changed_outcome_is_reported_with_its_job(live: Live) -> None:
    busy_run(live)
    document = scenario_from_log()
    expected = replay_trace(document)
    models.Job.objects.filter(uid="r2").update(lane=m.FAIR_SHARE)

    difference = first_difference(expected, live_trace(document))

    assert difference is not None and difference.subject == "job r2"
    assert "from the reservation lane" in difference.expected
    assert "from the fair_share lane" in difference.live
    index = difference.index
    assert (
        index is not None
        and trace_events(expected)[:index] == trace_events(live_trace(document))[:index]
    )


def test_without_check_a_difference_is_reported_but_exits_0(live: Live) -> None:
    live.submit("a1", 10)
    live.run_until(20)
    models.Job.objects.filter(uid="a1").update(ended_at=live.at(11))

    out = StringIO()
    call_command("replay", stdout=out)  # no SystemExit

    assert out.getvalue().splitlines()[:3] == [
        "first difference at event 2:",
        "  expected: no further event",
        "  live:     job a1 Completed at 11.25",
    ]


def test_an_empty_log_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    err = StringIO()
    with pytest.raises(SystemExit) as exit_status:
        call_command("replay", "--check", stderr=err)
    assert exit_status.value.code == 2
    assert err.getvalue().strip() == "replay: the event log is empty: no live run to replay"


def test_a_bad_output_path_is_a_one_line_error(live: Live, tmp_path: Path) -> None:
    live.submit("a1", 1)
    live.run_until(5)
    err = StringIO()
    with pytest.raises(SystemExit) as exit_status:
        call_command("replay", "--out", str(tmp_path / "no" / "such.json"), stderr=err)
    assert exit_status.value.code == 2
    assert err.getvalue().count("\n") == 1
    assert "such.json: No such file or directory" in err.getvalue()


def test_identical_traces_have_no_difference() -> None:
    trace = {
        "jobs": {
            "j": {
                "status": "Completed",
                "backend": "b",
                "session": None,
                "lane": "fair_share",
                "submitted_at": 0,
                "started_at": 0,
                "ended_at": 1,
                "error": None,
            }
        },
        "sessions": {},
        "starts": {"b": [[0, "j"]]},
        "usage": {"h/g/p": 1},
        "end_time": 1,
    }
    other = json.loads(json.dumps(trace))
    assert first_difference(trace, other) is None
    other["usage"]["h/g/p"] = 2
    difference = first_difference(trace, other)
    assert difference is not None
    assert (difference.index, difference.subject) == (None, "usage of h/g/p")


def test_an_input_committed_after_its_instant_was_decided_replays_identically(
    live: Live,
) -> None:
    """A submission stamped at an instant the leader has already decided (its web
    process committed it late) applies after that instant: the replay sees the same
    order of decisions."""
    live.submit("a1", 10)  # h/a/p: runs 0 - 10
    live.submit("a2", 10)
    live.run_until(10)  # the leader decides the instant a1 ends: a2 starts
    assert live.job("a2").status == m.RUNNING
    queue_job("c1", inst="h/c/p", at=live.at(10), expected=5)  # committed only now
    live.scheduler.tick()
    live.run_until(60)

    assert live.job("c1").submitted_at == live.at(10) + timedelta(microseconds=1)
    assert live.job("c1").started_at == live.at(20)
    out = StringIO()
    call_command("replay", "--check", stdout=out)
    assert out.getvalue().strip() == "identical: 3 jobs, 0 sessions"
    quiet = StringIO()
    call_command("replay", "--check", "--quiet", stdout=quiet)
    assert quiet.getvalue() == ""  # scripts read the exit status


def test_an_input_applied_after_a_leader_change_replays_identically(live: Live) -> None:
    """A new leader applies an input stamped before the last instant its predecessor
    decided after that instant, not in its past."""
    live.submit("a1", 10)
    live.submit("a2", 10)
    live.run_until(10)  # a1 ends and a2 starts at 10
    late = live.at(5)
    queue_job("c1", inst="h/c/p", at=late, expected=5)  # stamped long before
    live.scheduler = live.new_leader()
    live.run_until(60)

    assert live.job("c1").submitted_at == live.at(10) + timedelta(microseconds=1)
    out = StringIO()
    call_command("replay", "--check", stdout=out)
    assert out.getvalue().strip() == "identical: 3 jobs, 0 sessions"
    quiet = StringIO()
    call_command("replay", "--check", "--quiet", stdout=quiet)
    assert quiet.getvalue() == ""  # scripts read the exit status


def simulated(events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    document = {"backends": [{"name": "b"}], "events": events, **extra}
    return replay_trace(document)


def test_a_job_that_fails_runs_its_duration_then_fails_with_its_code() -> None:
    trace = simulated(
        [
            {
                "at": 0,
                "submit": {
                    "job": "x",
                    "instance": "h/g/p",
                    "backend": "b",
                    "duration": 5,
                    "fails": "execution_failed",
                },
            },
            {
                "at": 0,
                "submit": {
                    "job": "y",
                    "instance": "h/g/p",
                    "backend": "b",
                    "duration": 0,
                    "fails": "execution_failed",
                },
            },
            {"at": 0, "submit": {"job": "z", "instance": "h/g/p", "backend": "b", "duration": 1}},
        ]
    )
    jobs = trace["jobs"]
    assert [
        (jobs[j]["status"], jobs[j]["started_at"], jobs[j]["ended_at"], jobs[j]["error"])
        for j in "xyz"
    ] == [
        (m.FAILED, 0, 5, "execution_failed"),
        (m.FAILED, 5, 5, "execution_failed"),
        (m.COMPLETED, 5, 6, None),
    ]


def test_a_job_without_a_duration_runs_until_it_is_cancelled_or_reaches_its_limit() -> None:
    trace = simulated(
        [
            {
                "at": 0,
                "submit": {
                    "job": "x",
                    "instance": "h/g/p",
                    "backend": "b",
                    "duration": None,
                    "max_execution_time": 30,
                },
            },
            {
                "at": 0,
                "submit": {"job": "y", "instance": "h/g/p", "backend": "b", "duration": None},
            },
            {"at": 40, "cancel_job": "y"},
        ]
    )
    x, y = trace["jobs"]["x"], trace["jobs"]["y"]
    assert (x["status"], x["ended_at"], x["error"]) == (m.FAILED, 30, m.MAX_EXECUTION_TIME_EXCEEDED)
    assert (y["status"], y["started_at"], y["ended_at"]) == (m.CANCELLED, 30, 40)


def test_a_run_stops_at_until_with_what_is_running_and_queued() -> None:
    trace = simulated(
        [
            {"at": 0, "submit": {"job": "x", "instance": "h/g/p", "backend": "b", "duration": 10}},
            {"at": 0, "submit": {"job": "y", "instance": "h/g/p", "backend": "b", "duration": 10}},
            {"at": 30, "cancel_job": "y"},
        ],
        until=15,
    )
    assert [trace["jobs"][j]["status"] for j in "xy"] == [m.COMPLETED, m.RUNNING]
    assert trace["end_time"] == 10 and trace["usage"] == {"h/g/p": 10}


def test_the_db_engine_refuses_keys_it_does_not_run() -> None:
    from scheduler.sim.db import DbEngine
    from scheduler.sim.scenario import ScenarioError

    job = {"job": "x", "instance": "h/g/p", "backend": "b", "duration": 1}
    failing = {"backends": [{"name": "b"}], "events": [{"at": 0, "submit": {**job, "fails": "e"}}]}
    window = {"id": "r", "backend": "b", "instance": "h/g/p", "start": 1, "end": 2}
    moved = {"backends": [{"name": "b"}], "events": [{"at": 0, "put_reservation": window}]}

    for document, key in ((failing, "fails"), (moved, "put_reservation")):
        with pytest.raises(ScenarioError, match=key):
            DbEngine(parse_scenario(json.dumps(document)))


def operator_change(live: Live, rng: Any) -> None:
    """One of the operators' changes the rules read, drawn from `rng`."""
    roll = rng.random()
    node = rng.choice(["h", "h/a", "h/b", "h/c/p"])
    if roll < 0.4:
        period: dict[str, Any] = {}
        if rng.random() < 0.4:
            period = {"period_start": live.clock.now(), "period_length": 30 * SECOND}
        enforce = rng.choice(m.ENFORCE_MODES)
        seconds = rng.choice([0, 5, 20, 60])
        services.allocations_set(
            path=node, seconds=seconds, enforce=enforce, clock=live.clock, **period
        )
    elif roll < 0.6:
        services.allocations_remove(path=node, clock=live.clock)
    elif roll < 0.8:
        row = models.Instance.objects.get(path=node)
        before, row.share = row.share, rng.choice([0.5, 1, 3])
        row.save()
        services.shares_changed(path=node, before=before, clock=live.clock)
    else:
        backend = models.Backend.objects.get(name=rng.choice(["sim_a", "sim_b"]))
        before, backend.max_runtime = backend.max_runtime, rng.choice([None, 2 * SECOND])
        backend.save()
        services.backends_changed(backend=backend, before=before, clock=live.clock)


@pytest.mark.parametrize("seed", range(20))
def test_random_traffic_with_late_inputs_and_leader_changes_replays_identically(
    live: Live, seed: int
) -> None:
    """Submissions (some stamped before the instant the leader reached, as a web
    process that commits late), sessions both ways, cancels, closes, pauses,
    operators' changes, executor failures and leader changes at random points."""
    import random

    rng = random.Random(seed)
    sessions: list[str] = []
    jobs: list[str] = []
    elapsed = 0.0
    for n in range(45):
        roll = rng.random()
        now = live.clock.now()
        if roll < 0.4 or not jobs:
            uid = f"{'bad' if rng.random() < 0.1 else 'j'}{n}"
            extra: dict[str, Any] = {}
            if sessions and rng.random() < 0.4:
                extra["session"] = rng.choice(sessions)
            elif rng.random() < 0.15:
                extra = {"start_session": True, "session": f"s{n}"}
                sessions.append(f"s{n}")
            stamped = now - rng.choice([0, 0, 0.5, 2]) * SECOND  # committed late
            session = extra.get("session")
            inst = (
                models.Session.objects.get(uid=session).instance.path
                if session and not extra.get("start_session")
                else rng.choice(["h/a/p", "h/b/p", "h/c/p"])
            )
            backend = (
                models.Session.objects.get(uid=session).backend.name
                if session and not extra.get("start_session")
                else rng.choice(["sim_a", "sim_b"])
            )
            queue_job(
                uid,
                inst=inst,
                backend=backend,
                at=stamped,
                expected=rng.choice([0.5, 1, 3, 8, 20]),
                **extra,
            )
            jobs.append(uid)
        elif roll < 0.5:
            mode = rng.choice([m.DEDICATED, m.BATCH])
            name = f"s{n}"
            backend = rng.choice(["sim_a", "sim_b"])
            inst = rng.choice(["h/a/p", "h/b/p", "h/c/p"])
            record(m.CreateSession(session=name, instance=inst, backend=backend, mode=mode), at=now)
            sessions.append(name)
        elif roll < 0.6:
            record(m.CancelJob(rng.choice(jobs)), at=now)
        elif roll < 0.66 and sessions:
            name = rng.choice(sessions)
            action = m.CloseSession(name) if rng.random() < 0.7 else m.CancelSession(name)
            record(action, at=now)
        elif roll < 0.72:
            backend = models.Backend.objects.get(name=rng.choice(["sim_a", "sim_b"]))
            status = m.PAUSED if backend.status == m.ONLINE else m.ONLINE
            record(m.SetBackendStatus(backend.name, status), at=now)
        elif roll < 0.8:
            live.scheduler = live.new_leader()
        elif roll < 0.9:
            operator_change(live, rng)
        if rng.random() < 0.7:
            live.scheduler.tick()
        if rng.random() < 0.5:
            elapsed += rng.choice([0.25, 1, 4, 10])
            live.run_until(elapsed)
    for name in ("sim_a", "sim_b"):
        record(m.SetBackendStatus(name, m.ONLINE), at=live.clock.now())
    live.run_until(elapsed + 400)

    out = StringIO()
    call_command("replay", stdout=out)
    assert out.getvalue().startswith("identical: "), out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_command_reads_one_snapshot_outside_a_transaction(settings: Any) -> None:
    settings.QDASH_EAGER_LEADER = False
    settings.QDASH_APPLY_WAIT = 0
    live = Live()
    live.submit("a1", 3)
    live.submit("b1", 3, inst="h/b/p")
    live.run_until(10)

    out = StringIO()
    call_command("replay", "--check", stdout=out)

    assert out.getvalue().strip() == "identical: 2 jobs, 0 sessions"


def test_a_new_leader_breaks_equal_submission_times_in_the_order_they_were_applied(
    live: Live,
) -> None:
    """Two web processes created their job rows in one order and committed their
    inputs in the other; a new leader still starts them in the order applied."""
    from django.db import transaction

    from scheduler import inputs

    live.submit("first", 10)
    backend = models.Backend.objects.get(name="sim_a")
    node = instance("h/a/p")
    with transaction.atomic():
        rows = {
            uid: models.Job.objects.create(
                uid=uid,
                backend=backend,
                instance=node,
                params={"job": uid},
                submitted_at=live.clock.now(),
                expected_duration=timedelta(seconds=5),
            )
            for uid in ("made_first", "made_second")
        }
        for uid in ("made_second", "made_first"):  # committed in the other order
            inputs.record(models.Input.Kind.SUBMIT, at=live.clock.now(), job=rows[uid])
    live.scheduler.tick()
    live.scheduler = live.new_leader()
    live.run_until(60)

    assert live.job("made_second").started_at == live.at(10)
    out = StringIO()
    call_command("replay", "--check", stdout=out)
    assert out.getvalue().strip() == "identical: 3 jobs, 0 sessions"
    quiet = StringIO()
    call_command("replay", "--check", "--quiet", stdout=quiet)
    assert quiet.getvalue() == ""  # scripts read the exit status


def test_a_submission_the_leader_refuses_replays_as_rejected(live: Live) -> None:
    live.act(m.CreateSession(session="s", instance="h/a/p", backend="sim_a"))
    live.submit("in", 2, session="s")
    live.run_until(5)
    live.act(m.CloseSession("s"))
    live.clock.set(live.at(6))
    queue_job("late", inst="h/a/p", at=live.at(5), expected=2, session="s")  # raced the close
    live.run_until(10)

    document = scenario_from_log()
    trace = live_trace(document)
    assert trace["jobs"]["late"]["status"] == "Rejected"
    assert trace["jobs"]["late"]["error"] == m.SESSION_CLOSED
    assert first_difference(replay_trace(document), trace) is None


def operators_run(live: Live) -> None:
    """Every kind of operator's change the rules read, some while jobs wait, some
    committed just before a leader change, with a reservation made exclusive and one
    deleted in its window: allocations set, replaced and removed, shares, a runtime
    limit."""
    sim_a = models.Backend.objects.get(name="sim_a")
    before_log = models.Reservation.objects.create(  # its row predates the log
        backend=sim_a, instance=instance("h/c/p"), start=live.at(200), end=live.at(260)
    )
    live.submit("a1", 40)  # longer than the runtime limit set later: it completes
    live.submit("b1", 20, inst="h/b/p")
    services.allocations_set(path="h/a", seconds=15, clock=live.clock)
    live.run_until(5)
    live.submit("a2", 10)  # h/a has 15 s: a1's 40 s leave it waiting
    live.submit("c1", 30, inst="h/c/p", backend="sim_b")
    live.run_until(45)
    services.allocations_set(path="h", seconds=100, enforce=m.SAFE, clock=live.clock)
    live.submit("b2", 40, inst="h/b/p")
    live.submit("b3", 25, inst="h/b/p")
    live.run_until(50)
    node = models.Instance.objects.get(path="h/b")
    node.share = 4
    node.save()
    services.shares_changed(path="h/b", before=1.0, clock=live.clock)
    sim_a.max_runtime = timedelta(seconds=35)
    sim_a.save()
    services.backends_changed(backend=sim_a, before=None, clock=live.clock)
    live.scheduler = live.new_leader()  # takes over with those changes still waiting
    live.run_until(60)
    window = models.Reservation.objects.create(
        backend=models.Backend.objects.get(name="sim_b"),
        instance=instance("h/b/p"),
        start=live.at(70),
        end=live.at(150),
    )
    services.reservations_changed(reservation_id=window.pk, clock=live.clock)
    live.run_until(80)
    before = services.reservation_window(window)
    window.exclusive = True
    window.save()
    services.reservations_changed(reservation_id=window.pk, before=before, clock=live.clock)
    live.run_until(100)
    services.allocations_remove(path="h/a", clock=live.clock)
    pk, before = window.pk, services.reservation_window(window)
    window.delete()  # in its window: it closes at once
    services.reservations_changed(reservation_id=pk, before=before, clock=live.clock)
    live.run_until(210)
    pk, before = before_log.pk, services.reservation_window(before_log)
    before_log.delete()
    live.scheduler = live.new_leader()
    services.reservations_changed(reservation_id=pk, before=before, clock=live.clock)
    services.allocations_set(path="h", seconds=1000, clock=live.clock)
    live.run_until(600)


def test_a_run_with_every_kind_of_operators_change_replays_identically(live: Live) -> None:
    operators_run(live)

    document = scenario_from_log()
    kinds = [next(k for k in event if k != "at") for event in document["events"]]
    for kind in (
        "put_allocation",
        "set_share",
        "backend_max_runtime",
        "put_reservation",
        "remove_reservation",
    ):
        assert kind in kinds, kind
    assert document["shares"] == {}  # as the run began: h/b's 4 came later
    assert [b["max_runtime"] for b in document["backends"]] == [None, None]
    assert [r["instance"] for r in document["reservations"]] == ["h/c/p"]  # the deleted one
    assert live.job("a1").status == m.COMPLETED  # under the limit it started with
    assert live.job("a2").started_at == live.at(100)  # when h/a's allocation went
    assert live.job("b2").error == m.MAX_EXECUTION_TIME_EXCEEDED  # under the new limit
    assert first_difference(replay_trace(document), live_trace(document)) is None
    out = StringIO()
    call_command("replay", "--check", stdout=out)
    assert out.getvalue().startswith("identical: "), out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_session_and_a_job_the_leader_refuses_for_an_allocation_replay_as_refused(
    live: Live,
) -> None:
    services.allocations_set(path="h/a/p", seconds=5, enforce=m.REFUSE, clock=live.clock)
    live.submit("a1", 10)
    live.run_until(20)  # 10 used of 5
    # Stored as a web process that had not seen the charge yet would store them.
    record(m.CreateSession(session="s", instance="h/a/p", backend="sim_a"), at=live.clock.now())
    queue_job("a2", inst="h/a/p", at=live.clock.now(), expected=1, start_session=True, session="t")
    queue_job("a3", inst="h/a/p", at=live.clock.now(), expected=1)
    live.run_until(30)

    assert models.Session.objects.get(uid="s").closed_reason == m.ALLOCATION_EXHAUSTED
    assert live.job("a2").error == live.job("a3").error == m.ALLOCATION_EXHAUSTED
    document = scenario_from_log()
    trace = live_trace(document)
    assert set(trace["sessions"]) == set()
    assert [trace["jobs"][j]["status"] for j in ("a1", "a2", "a3")] == [
        m.COMPLETED,
        "Rejected",
        "Rejected",
    ]
    assert first_difference(replay_trace(document), trace) is None

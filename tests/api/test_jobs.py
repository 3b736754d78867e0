"""`/jobs`: submit, retry safety, limits, read, list, cancel, delete, results, metrics, tags."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from qiskit_ibm_runtime.quantum_program import QuantumProgram

from scheduler import limits, models
from scheduler.circuits import ghz
from scheduler.policy import model as m
from tests.api.conftest import Caller, bell_params, job_body, pause
from tests.executor_results import program_params
from tests.test_quantum_programs import rotation_program

pytestmark = pytest.mark.django_db


def submit(caller: Caller, **extra: object) -> str:
    response = caller.post("/jobs", job_body(**extra))
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def test_it_queues_a_job_with_the_params_as_sent(alice: Caller, backend: models.Backend) -> None:
    pause(backend)
    response = alice.post("/jobs", job_body(tags=["t1"], cost=30))
    assert response.status_code == 201
    body = response.json()
    assert body["backend"] == "sim_a" and body["session_id"] is None
    job = models.Job.objects.get(uid=body["id"])
    assert job.owner == alice.user and job.params == bell_params()
    assert job.tags == ["t1"] and job.max_execution_time == timedelta(seconds=30)


def test_start_session_makes_the_job_the_session(alice: Caller, backend: models.Backend) -> None:
    body = alice.post("/jobs", job_body(start_session=True)).json()
    assert body["session_id"] == body["id"]
    assert models.Session.objects.get(uid=body["id"]).owner == alice.user


def test_an_idempotency_key_returns_the_first_job(alice: Caller, backend: models.Backend) -> None:
    first = alice.post("/jobs", job_body(), **{"Idempotency-Key": "k1"})
    again = alice.post("/jobs", job_body(), **{"Idempotency-Key": "k1"})
    other = alice.post("/jobs", job_body(), **{"Idempotency-Key": "k2"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert models.Job.objects.count() == 2


@override_settings(QDASH_JOB_DEDUPE_SECONDS=60)
def test_an_identical_body_within_the_window_is_one_job(
    alice: Caller, bob: Caller, backend: models.Backend
) -> None:
    first = submit(alice)
    retry = alice.post("/jobs", job_body())
    assert retry.status_code == 200 and retry.json()["id"] == first
    assert submit(alice, tags=["different"]) != first
    assert submit(bob) != first  # another user's identical body is its own job


def test_identical_bodies_are_separate_jobs_by_default(
    alice: Caller, backend: models.Backend
) -> None:
    assert submit(alice) != submit(alice)  # a loop running one circuit many times


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"program_id": "runner"}, 400, "unknown_program"),
        ({"program_id": "executor"}, 400, "invalid_circuit"),  # sampler params, no program
        ({"program_id": "executor", "params": {"schema_version": "v2.0"}}, 400, "invalid_circuit"),
        ({"backend": "nope"}, 404, "unknown_backend"),
        ({"session_id": "qnope"}, 404, "unknown_session"),
        ({"params": {"pubs": []}}, 400, "invalid_circuit"),
        ({"params": {"pubs": [["not qpy"]]}}, 400, "invalid_circuit"),
        ({"params": "x"}, 400, "invalid_request"),
        ({"tags": "x"}, 400, "invalid_request"),
        ({"params": {**bell_params(), "options": {"default_shots": -1}}}, 400, "invalid_circuit"),
    ],
)
def test_bad_jobs_are_refused_and_store_nothing(
    alice: Caller, backend: models.Backend, change: dict, status: int, code: str
) -> None:
    response = alice.post("/jobs", {**job_body(), **change})
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert not models.Job.objects.exists()


def test_it_queues_an_executor_program_with_its_modeled_time(
    alice: Caller, backend: models.Backend
) -> None:
    pause(backend)
    params = program_params(rotation_program())
    response = alice.post("/jobs", job_body(program_id="executor", params=params))
    assert response.status_code == 201, response.content
    job = models.Job.objects.get(uid=response.json()["id"])
    assert job.program_id == "executor" and job.params == params
    executions = 3 * 400  # three bindings of 400 shots
    assert job.expected_duration == backend.job_overhead + executions * backend.shot_time


def test_an_executor_program_wider_than_the_backend_is_refused(
    alice: Caller, backend: models.Backend
) -> None:
    wide = QuantumProgram(shots=10)
    wide.append_circuit_item(ghz(backend.num_qubits + 1))
    response = alice.post("/jobs", job_body(program_id="executor", params=program_params(wide)))
    assert response.status_code == 400, response.content
    assert "qubits; backend has" in response.json()["message"]
    assert not models.Job.objects.exists()


def _with_shots(shots: object) -> dict:
    params = bell_params()
    params["pubs"][0][2] = shots
    return params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (_with_shots(10**9), "pub 0 has 1000000000 shots; at most 100000"),
        (_with_shots(10**14), "pub 0 has 100000000000000 shots"),
        (_with_shots(1e30), "shots must be an integer"),
        (_with_shots(10**30), "has 1000000000000000000000000000000 shots"),
        ({**bell_params(), "pubs": bell_params()["pubs"] * 10_000}, "10000 PUBs; at most 100"),
    ],
)
def test_work_beyond_the_limits_is_refused_before_it_is_done(
    alice: Caller, backend: models.Backend, params: dict, message: str
) -> None:
    response = alice.post("/jobs", job_body(params=params))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_circuit"
    assert message in response.json()["message"]
    assert not models.Job.objects.exists()


def test_the_advertised_max_shots_is_the_enforced_one(
    alice: Caller, backend: models.Backend
) -> None:
    advertised = alice.get("/backends/sim_a/configuration").json()["max_shots"]
    assert alice.post("/jobs", job_body(params=_with_shots(advertised))).status_code == 201
    assert alice.post("/jobs", job_body(params=_with_shots(advertised + 1))).status_code == 400


def test_a_circuit_wider_than_the_backend_is_refused(alice: Caller) -> None:
    from tests.factories import BackendFactory

    BackendFactory(name="tiny", num_qubits=1)
    response = alice.post("/jobs", job_body(backend="tiny"))
    assert response.status_code == 400 and "qubits" in response.json()["message"]


def test_a_body_that_is_not_json_is_400(alice: Caller, backend: models.Backend) -> None:
    response = alice.client.post(
        "/api/v1/jobs", "{oops", content_type="application/json", headers=alice.headers()
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"


def test_a_payload_over_djangos_memory_limit_is_accepted(
    alice: Caller, backend: models.Backend
) -> None:
    params = {**bell_params(), "note": "x" * (3 * 2**20)}  # DATA_UPLOAD_MAX_MEMORY_SIZE: 2.5 MB
    assert alice.post("/jobs", job_body(params=params)).status_code == 201


@pytest.mark.parametrize("field", ["cost", "max_execution_time"])
def test_an_absurd_time_limit_is_400_not_an_overflow(
    alice: Caller, backend: models.Backend, field: str
) -> None:
    response = alice.post("/jobs", job_body(**{field: 10**30}))
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


@override_settings(QDASH_MAX_PAYLOAD_BYTES=100)
def test_an_oversized_payload_is_413(alice: Caller, backend: models.Backend) -> None:
    response = alice.post("/jobs", job_body())
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not models.Job.objects.exists()


@override_settings(QDASH_MAX_QUEUED_PER_USER=2)
def test_the_queued_job_limit_is_429(alice: Caller, backend: models.Backend) -> None:
    pause(backend)
    submit(alice, tags=["1"])
    submit(alice, tags=["2"])
    response = alice.post("/jobs", job_body(tags=["3"]))
    assert response.status_code == 429 and response.json()["code"] == "too_many_queued"


def test_a_job_reads_as_the_client_expects(alice: Caller, backend: models.Backend) -> None:
    pause(backend)
    uid = submit(alice, tags=["x"])
    body = alice.get(f"/jobs/{uid}").json()
    assert body["state"] == {"status": "Queued", "reason": None, "reason_code": None}
    assert body["program"] == {"id": "sampler"} and body["tags"] == ["x"]
    assert body["backend"] == "sim_a" and body["created"].endswith("Z")
    assert body["params"] == bell_params()
    assert alice.get(f"/jobs/{uid}", exclude_params="true").json()["params"] is None


def test_a_run_over_its_limit_shows_cancelled_1305(alice: Caller, backend: models.Backend) -> None:
    uid = submit(alice)
    models.Job.objects.filter(uid=uid).update(status=m.FAILED, error=m.MAX_EXECUTION_TIME_EXCEEDED)
    state = alice.get(f"/jobs/{uid}").json()["state"]
    assert state["status"] == "Cancelled" and state["reason_code"] == 1305
    assert state["reason"].startswith("Job ran longer than maximum execution time")
    assert "maximum execution time" in alice.get(f"/jobs/{uid}/results").content.decode()


def test_results_are_the_stored_text(alice: Caller, backend: models.Backend) -> None:
    uid = submit(alice)
    assert alice.get(f"/jobs/{uid}/results").status_code == 409  # not finished
    models.Job.objects.filter(uid=uid).update(status=m.COMPLETED, result='{"x": 1}')
    response = alice.get(f"/jobs/{uid}/results")
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"x": 1}


def test_a_private_jobs_params_are_hidden_and_its_result_handed_out_once(
    alice: Caller, backend: models.Backend
) -> None:
    pause(backend)
    uid = submit(alice, private=True)
    shown = alice.get(f"/jobs/{uid}?exclude_params=false").json()
    assert shown["private"] is True and shown["params"] is None
    assert models.Job.objects.get(uid=uid).params == bell_params()  # kept, to run it
    models.Job.objects.filter(uid=uid).update(status=m.COMPLETED, result='{"x": 1}')
    assert json.loads(alice.get(f"/jobs/{uid}/results").content) == {"x": 1}
    again = alice.get(f"/jobs/{uid}/results")
    assert again.status_code == 200 and again.content == b""
    assert models.Job.objects.get(uid=uid).result is None


def test_a_failed_jobs_results_are_its_error(alice: Caller, backend: models.Backend) -> None:
    uid = submit(alice)
    models.Job.objects.filter(uid=uid).update(
        status=m.FAILED, error="execution_failed", error_message="simulation failed: boom"
    )
    assert "boom" in alice.get(f"/jobs/{uid}/results").content.decode()
    assert alice.get(f"/jobs/{uid}").json()["state"]["status"] == "Failed"


def test_list_filters_and_pages(alice: Caller, backend: models.Backend) -> None:
    pause(backend)
    uids = [submit(alice, tags=[str(n)]) for n in range(3)]
    models.Job.objects.filter(uid=uids[0]).update(status=m.COMPLETED)
    listed = alice.get("/jobs", limit=2).json()
    assert listed["count"] == 3 and [j["id"] for j in listed["jobs"]] == uids[:0:-1]
    assert [j["id"] for j in alice.get("/jobs", limit=2, offset=2).json()["jobs"]] == [uids[0]]
    assert alice.get("/jobs", pending="true").json()["count"] == 2
    assert alice.get("/jobs", pending="false").json()["count"] == 1
    assert alice.get("/jobs", backend="other").json()["count"] == 0
    assert alice.get("/jobs", created_after="2999-01-01T00:00:00Z").json()["count"] == 0
    assert alice.get("/jobs", sort="ASC").json()["jobs"][0]["id"] == uids[0]


@pytest.mark.parametrize(
    ("after", "count"),
    [
        ("1013-06-25T11:07:14-23:50", 1),  # an offset PostgreSQL itself would refuse
        ("2999-01-01T00:00:00+14:00", 0),
        ("2999-01-01T00:00:00", 0),  # no offset: UTC
    ],
)
def test_list_time_filters_take_any_offset(
    alice: Caller, backend: models.Backend, after: str, count: int
) -> None:
    submit(alice)
    assert alice.get("/jobs", created_after=after).json()["count"] == count


def test_a_time_filter_out_of_range_is_refused(alice: Caller, backend: models.Backend) -> None:
    response = alice.get("/jobs", created_before="0001-01-01T00:00:00+05:00")
    assert response.status_code == 400 and response.json()["code"] == "invalid_parameter"


def test_list_filters_by_every_tag(alice: Caller, backend: models.Backend) -> None:
    both = submit(alice, tags=["bell", "night"])
    submit(alice, tags=["bell"])
    submit(alice)

    jobs = alice.get("/jobs?tags=bell&tags=night").json()

    assert ([j["id"] for j in jobs["jobs"]], jobs["count"]) == ([both], 1)


def test_list_filters_by_session(alice: Caller, backend: models.Backend) -> None:
    session = alice.post("/sessions", {"backend": "sim_a"}).json()["id"]
    inside = submit(alice, session_id=session)
    submit(alice, tags=["outside"])
    jobs = alice.get("/jobs", session_id=session).json()["jobs"]
    assert [j["id"] for j in jobs] == [inside] and jobs[0]["session_id"] == session


def test_cancel_a_queued_job_and_refuse_a_final_one(alice: Caller, backend: models.Backend) -> None:
    pause(backend)
    uid = submit(alice)
    assert alice.post(f"/jobs/{uid}/cancel").status_code == 204
    assert models.Job.objects.get(uid=uid).status == m.CANCELLED
    again = alice.post(f"/jobs/{uid}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "job_final"


def test_deleting_a_queued_job_cancels_it_first(alice: Caller, backend: models.Backend) -> None:
    pause(backend)
    uid = submit(alice)
    assert alice.delete(f"/jobs/{uid}").status_code == 204
    assert not models.Job.objects.filter(uid=uid).exists()
    assert alice.get(f"/jobs/{uid}").status_code == 404


@override_settings(QDASH_APPLY_WAIT=0, QDASH_EAGER_LEADER=False)
def test_a_job_whose_cancel_is_pending_is_not_deleted(
    alice: Caller, backend: models.Backend
) -> None:
    pause(backend)
    uid = submit(alice)
    response = alice.delete(f"/jobs/{uid}")
    assert response.status_code == 409 and response.json()["code"] == "job_not_final"
    assert models.Job.objects.get(uid=uid).status == m.QUEUED


def test_metrics_show_queue_position_and_estimated_start(
    alice: Caller, backend: models.Backend
) -> None:
    running = submit(alice, tags=["first"])
    waiting = submit(alice, tags=["second"])
    metrics = alice.get(f"/jobs/{waiting}/metrics").json()
    assert metrics["position_in_queue"] == 1
    assert metrics["estimated_start_time"] is not None
    assert metrics["qiskit_version"]  # the client's test suite reads it
    assert metrics["timestamps"]["created"] is not None
    ran = alice.get(f"/jobs/{running}/metrics").json()
    assert ran["position_in_queue"] is None and ran["timestamps"]["running"] is not None
    assert ran["usage"]["status"] == "pending"


def test_metrics_say_the_position_is_planned_or_not_queued(
    alice: Caller, backend: models.Backend
) -> None:
    running = submit(alice)
    waiting = submit(alice)
    metrics = alice.get(f"/jobs/{waiting}/metrics").json()
    assert metrics["position_status"] == "planned"
    assert metrics["position_detail"] == "position 1 on sim_a"
    ran = alice.get(f"/jobs/{running}/metrics").json()
    assert (ran["position_status"], ran["position_detail"]) == ("not_queued", "not queued")


@override_settings(QDASH_APPLY_WAIT=0, QDASH_EAGER_LEADER=False)
def test_metrics_of_a_job_newer_than_the_plan_say_its_position_is_being_computed(
    alice: Caller, backend: models.Backend
) -> None:
    from scheduler import plans
    from scheduler.engine.step import Leader
    from scheduler.policy import make_plan

    uid = submit(alice)  # no leader has applied it: the plan has no entry for it
    metrics = alice.get(f"/jobs/{uid}/metrics").json()
    assert metrics["position_in_queue"] is None  # the field the client reads, still a number
    assert metrics["position_status"] == "being_computed"
    assert metrics["position_detail"] == "position being computed"
    assert metrics["estimated_start_time"] is None
    leader = Leader()
    leader.step(leader_now := _ticks_now())
    assert leader.policy is not None
    plans.Publisher().publish(make_plan(leader.policy, leader_now))
    pending = submit(alice)  # newer than the plan just published
    metrics = alice.get(f"/jobs/{pending}/metrics").json()
    assert metrics["position_status"] == "being_computed"
    planned = alice.get(f"/jobs/{uid}/metrics").json()  # ran: the only job, on a free backend
    assert planned["position_status"] == "not_queued"


@override_settings(QDASH_APPLY_WAIT=0, QDASH_EAGER_LEADER=False)
def test_metrics_of_a_job_the_plan_never_starts_say_so(
    alice: Caller, backend: models.Backend
) -> None:
    from scheduler import plans
    from scheduler.engine.step import Leader
    from scheduler.policy import make_plan

    pause(backend)
    uid = submit(alice)
    leader = Leader()
    leader.step(now := _ticks_now())
    assert leader.policy is not None
    plans.Publisher().publish(make_plan(leader.policy, now))
    metrics = alice.get(f"/jobs/{uid}/metrics").json()
    assert metrics["position_in_queue"] is None
    assert metrics["position_status"] == "not_started_by_plan"
    assert metrics["position_detail"].startswith("no position: the plan does not start it")


def _ticks_now() -> int:
    from django.utils import timezone

    from scheduler.clock import to_ticks

    return to_ticks(timezone.now())


def test_logs_list_the_jobs_events(alice: Caller, backend: models.Backend) -> None:
    uid = submit(alice)
    response = alice.get(f"/jobs/{uid}/logs")
    assert response.status_code == 200 and "job_submitted" in response.content.decode()


def test_tags_are_replaced(alice: Caller, backend: models.Backend) -> None:
    uid = submit(alice, tags=["a"])
    assert alice.put(f"/jobs/{uid}/tags", {"tags": ["b", "c"]}).status_code == 204
    assert models.Job.objects.get(uid=uid).tags == ["b", "c"]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("get", "/results"),
        ("get", "/logs"),
        ("get", "/metrics"),
        ("post", "/cancel"),
        ("delete", ""),
    ],
)
def test_another_users_job_is_404(
    alice: Caller, bob: Caller, backend: models.Backend, method: str, suffix: str
) -> None:
    uid = submit(alice)
    response = getattr(bob, method)(f"/jobs/{uid}{suffix}")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert bob.put(f"/jobs/{uid}/tags", {"tags": []}).status_code == 404
    assert bob.get("/jobs").json()["count"] == 0
    assert models.Job.objects.get(uid=uid).status != m.CANCELLED


def test_a_job_needs_an_instance(alice: Caller, backend: models.Backend) -> None:
    alice.crn = ""
    other = models.Instance.objects.create(path="hub/group/other2")
    alice.user.instances.add(other)
    response = alice.post("/jobs", job_body())
    assert response.status_code == 400 and response.json()["code"] == "instance_required"


def test_tags_are_limited_in_number_and_length(
    alice: Caller, backend: models.Backend, settings: object
) -> None:
    settings.QDASH_MAX_TAGS = 2  # type: ignore[attr-defined]
    settings.QDASH_MAX_TAG_CHARS = 5  # type: ignore[attr-defined]
    for tags, message in ((["a", "b", "c"], "3 tags; at most 2"), (["abcdef"], "6 characters")):
        response = alice.post("/jobs", job_body(tags=tags))
        assert response.status_code == 400 and message in response.json()["message"]
    assert not models.Job.objects.exists()
    uid = submit(alice, tags=["ok"])
    assert alice.put(f"/jobs/{uid}/tags", {"tags": ["x", "y", "z"]}).status_code == 400
    assert models.Job.objects.get(uid=uid).tags == ["ok"]


def test_a_user_with_too_many_submissions_being_decoded_gets_429(
    alice: Caller, bob: Caller, backend: models.Backend, settings: Any
) -> None:
    settings.QDASH_DECODE = {**settings.QDASH_DECODE, "QUEUE_PER_USER": 1}
    limits.decode_turns.cache_clear()
    turns = limits.decode_turns()
    try:
        with turns.turn(f"user:{alice.user.pk}"):  # alice has a decode in flight
            refused = alice.post("/jobs", job_body())
            accepted = bob.post("/jobs", job_body())
    finally:
        limits.decode_turns.cache_clear()
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_decodes"
    assert refused["Retry-After"] == str(settings.QDASH_DECODE["SECONDS"])
    assert accepted.status_code == 201
    assert models.Job.objects.filter(owner=alice.user).count() == 0


def test_a_loop_of_a_trillion_iterations_is_a_400_that_stores_nothing(
    alice: Caller, backend: models.Backend
) -> None:
    from qiskit import QuantumCircuit

    from scheduler.circuits import sampler_params

    circuit = QuantumCircuit(1, 1)
    with circuit.for_loop(range(10**12)):
        circuit.x(0)
    circuit.measure(0, 0)
    response = alice.post("/jobs", job_body(params=sampler_params([circuit], 10)))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_circuit"
    assert "once its loops are unrolled" in response.json()["message"]
    assert not models.Job.objects.exists()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions run in the decoding sandbox, in order."""
    sandbox = limits.sandbox()
    ran: list[str] = []
    real_run = sandbox.run

    def counting_run(func: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(func.__name__)
        return real_run(func, *args, **kwargs)

    monkeypatch.setattr(sandbox, "run", counting_run)
    return ran


def test_the_same_input_is_checked_once_and_its_answer_given_again(
    alice: Caller,
    bob: Caller,
    backend: models.Backend,
    monkeypatch: pytest.MonkeyPatch,
    calls: list[str],
) -> None:
    """A second identical job costs no decode, and no turn: alice's second submission is
    accepted while her turn is held, where a new input would wait for it (and here be
    refused: one decode in line per user). Another user's same input is checked anew, so
    no one learns from an answer's speed what someone else sent."""
    first = submit(alice)
    assert calls == ["inspect"]
    monkeypatch.setattr(limits.decode_turns(), "queue_per_caller", 1)
    with limits.decode_turns().turn(f"user:{alice.user.pk}"):
        again = alice.post("/jobs", job_body())  # the same input: answered from memory
        other = alice.post("/jobs", job_body(params=bell_params(shots=77)))
        bobs = bob.post("/jobs", job_body())  # bob's answers are his own: checked again
    assert calls == ["inspect", "inspect"]
    assert again.status_code == 201 and bobs.status_code == 201
    assert other.status_code == 429  # a new input takes a turn, as before
    stored = models.Job.objects.filter(owner=alice.user).exclude(uid=first)
    assert stored.get().uid == again.json()["id"]


def test_a_refusal_is_remembered_but_a_cap_that_was_hit_is_not(
    alice: Caller, backend: models.Backend, monkeypatch: pytest.MonkeyPatch, calls: list[str]
) -> None:
    from qiskit import QuantumCircuit

    from scheduler.circuits import sampler_params
    from scheduler.sandbox import LimitExceeded

    circuit = QuantumCircuit(1, 1)
    with circuit.while_loop((circuit.clbits[0], False)):
        circuit.x(0)
    circuit.measure(0, 0)
    body = job_body(params=sampler_params([circuit], 10))
    refusals = [alice.post("/jobs", body) for _ in range(2)]
    assert [r.status_code for r in refusals] == [400, 400]
    assert refusals[0].json()["message"] == refusals[1].json()["message"]
    assert "while" in refusals[0].json()["message"]
    assert calls == ["inspect"]

    def capped_run(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append("capped")
        raise LimitExceeded("decoding took longer than 10 s")

    monkeypatch.setattr(limits.sandbox(), "run", capped_run)
    slow = job_body(params=bell_params(shots=99))
    answers = [alice.post("/jobs", slow) for _ in range(2)]
    assert [a.status_code for a in answers] == [400, 400]
    assert "longer than 10 s" in answers[1].json()["message"]
    assert calls == ["inspect", "capped", "capped"]  # asked again: the cap may not be hit
    assert not models.Job.objects.exists()

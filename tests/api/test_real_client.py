"""The unmodified `qiskit-ibm-runtime` client against a live qdash server and scheduler."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import close_old_connections, connection
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import (
    Batch,
    EstimatorV2,
    QiskitRuntimeService,
    QuantumProgram,
    SamplerV2,
    Session,
)
from qiskit_ibm_runtime.exceptions import IBMRuntimeError, RuntimeJobMaxTimeoutError
from qiskit_ibm_runtime.executor import Executor
from qiskit_ibm_runtime.executor_estimator import Estimator as ExecutorEstimator
from qiskit_ibm_runtime.executor_sampler import Sampler as ExecutorSampler

from scheduler import models, services
from scheduler.api.auth import instance_crn
from scheduler.auth_tokens import tokens_issue
from scheduler.engine.loop import Scheduler
from scheduler.policy import model as m
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The client deprecates SamplerV2 and more in favour of newer APIs.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
log = logging.getLogger(__name__)


@pytest.fixture
def scheduler_thread(settings: Any) -> Iterator[None]:
    """The scheduler leader ticking every 0.05 s in a thread, executing jobs inline
    and publishing the plan, as `serve` runs it; the API only stores inputs."""
    settings.QDASH_EAGER_LEADER = False
    stop = threading.Event()

    def run() -> None:
        scheduler = Scheduler(inline=True)
        try:
            while not stop.is_set():
                try:
                    scheduler.tick()
                    scheduler.publish_plan()
                except Exception:  # a failed step rolled back; the next tick retries
                    log.exception("scheduler tick failed")
                stop.wait(0.05)
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="test-scheduler", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)
    close_old_connections()


@pytest.fixture
def service(live_server: Any, monkeypatch: pytest.MonkeyPatch, scheduler_thread: None) -> Any:
    BackendFactory(
        name="sim_x",
        num_qubits=5,
        job_overhead=timedelta(milliseconds=20),
        shot_time=timedelta(microseconds=1),
    )
    user = UserFactory(username="client")
    instance("hub/group/client").members.add(user)
    _, key = tokens_issue(user=user)
    monkeypatch.setenv("IAM_URL", live_server.url)
    monkeypatch.setenv("QISKIT_FUNCTIONS_EXPERIMENTAL", "1")
    return QiskitRuntimeService(
        channel="ibm_quantum_platform",
        token=key,
        instance=instance_crn("hub/group/client"),
        url=live_server.url + "/experimental/api/v1",
    )


def bell(backend: Any) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return generate_preset_pass_manager(backend=backend, optimization_level=1).run(circuit)


def test_a_session_runs_sampler_and_estimator_jobs(service: Any) -> None:
    assert [b.name for b in service.backends()] == ["sim_x"]
    backend = service.backend("sim_x")
    circuit = bell(backend)
    with Session(backend=backend) as session:
        sampler = SamplerV2(mode=session)
        job = sampler.run([circuit], shots=2000)
        counts = job.result()[0].data.meas.get_counts()
        assert set(counts) == {"00", "11"} and abs(counts["00"] - 1000) < 200
        assert job.status() == "DONE" and job.session_id == session.session_id

        unmeasured = circuit.remove_final_measurements(inplace=False)
        observable = SparsePauliOp("ZZ").apply_layout(unmeasured.layout)
        evs = EstimatorV2(mode=session).run([(unmeasured, observable)]).result()[0].data.evs
        assert abs(float(evs) - 1) < 0.1

        details = session.details()
        assert details["state"] == "active" and details["backend_name"] == "sim_x"
        assert details["accepting_jobs"] is True
        metrics = job.metrics()
        assert metrics["timestamps"]["finished"] is not None
        session_id = session.session_id

    reopened = Session.from_id(session_id, service)
    assert reopened.details()["accepting_jobs"] is False
    with pytest.raises(IBMRuntimeError, match="closed"):
        SamplerV2(mode=reopened).run([circuit])
    row = models.Session.objects.get(uid=session_id)
    assert row.state == m.CLOSED and row.jobs.count() == 2


def test_a_queued_job_shows_its_place_and_can_be_cancelled(service: Any) -> None:
    backend = service.backend("sim_x")
    circuit = bell(backend)
    sim_x = models.Backend.objects.get(name="sim_x")
    services.backends_set_status(backend=sim_x, status=models.Backend.Status.PAUSED)
    job = SamplerV2(mode=backend).run([circuit], shots=100)
    assert job.status() == "QUEUED"
    metrics = job.metrics()
    assert metrics["position_in_queue"] is None  # a paused backend starts nothing
    job.cancel()
    assert job.status() == "CANCELLED"
    assert models.Job.objects.get(uid=job.job_id()).status == m.CANCELLED

    services.backends_set_status(backend=sim_x, status=models.Backend.Status.ONLINE)
    again = SamplerV2(mode=backend).run([circuit], shots=200)
    assert again.result()[0].data.meas.num_shots == 200
    listed = service.jobs(limit=10)
    assert {j.job_id() for j in listed} == {job.job_id(), again.job_id()}
    assert service.job(again.job_id()).status() == "DONE"


def test_a_job_over_its_max_execution_time_raises_the_timeout_error(service: Any) -> None:
    BackendFactory(
        name="sim_slow", num_qubits=5, job_overhead=timedelta(seconds=30), shot_time=timedelta(0)
    )
    backend = service.backend("sim_slow")
    sampler = SamplerV2(mode=backend)
    sampler.options.max_execution_time = 1
    job = sampler.run([bell(backend)], shots=10)
    with pytest.raises(RuntimeJobMaxTimeoutError):
        job.result(timeout=20)
    assert models.Job.objects.get(uid=job.job_id()).error == m.MAX_EXECUTION_TIME_EXCEEDED


def _in_mode(mode: str, backend: Any) -> contextlib.AbstractContextManager[Any]:
    """The backend itself (job mode), or a session or batch on it that closes afterwards."""
    if mode == "session":
        return Session(backend=backend)
    if mode == "batch":
        return Batch(backend=backend)
    return contextlib.nullcontext(backend)


@pytest.mark.parametrize("mode", ["job", "session", "batch"])
def test_the_executor_and_its_sampler_and_estimator_run_in_every_mode(
    service: Any, mode: str
) -> None:
    backend = service.backend("sim_x")
    circuit = bell(backend)
    program = QuantumProgram(shots=2000)
    program.append_circuit_item(circuit)
    unmeasured = circuit.remove_final_measurements(inplace=False)
    observable = SparsePauliOp("ZZ").apply_layout(unmeasured.layout)
    with _in_mode(mode, backend) as where:
        executed = Executor(mode=where).run(program)
        sampled = ExecutorSampler(mode=where).run([circuit], shots=2000)
        estimated = ExecutorEstimator(mode=where).run([(unmeasured, observable)])
        bits = executed.result()[0]["meas"]
        counts = sampled.result()[0].data.meas.get_counts()
        evs = estimated.result()[0].data.evs

    assert bits.shape == (2000, 2)
    ones = bits.sum(axis=1)
    assert set(ones.tolist()) <= {0, 2}  # every shot reads 00 or 11
    assert abs(int((ones == 0).sum()) - 1000) < 200
    assert set(counts) == {"00", "11"} and abs(counts["00"] - 1000) < 200
    assert abs(float(evs) - 1) < 0.1
    rows = models.Job.objects.filter(uid__in=[j.job_id() for j in (executed, sampled, estimated)])
    assert [job.program_id for job in rows] == ["executor"] * 3
    sessions = {job.session.mode if job.session else None for job in rows}
    assert sessions == {{"job": None, "session": m.DEDICATED, "batch": m.BATCH}[mode]}
    # Modeled QPU time: the backend's overhead plus 1 µs per shot of each item element.
    executor_job = models.Job.objects.get(uid=executed.job_id())
    assert executor_job.expected_duration == timedelta(milliseconds=20, microseconds=2000)


def test_a_batch_runs_its_jobs_as_a_batch_mode_session(service: Any) -> None:
    backend = service.backend("sim_x")
    circuit = bell(backend)
    with Batch(backend=backend) as batch:
        sampler = ExecutorSampler(mode=batch)
        jobs = [sampler.run([circuit], shots=1000) for _ in range(3)]
        results = [job.result()[0].data.meas.get_counts() for job in jobs]
        batch_id = batch.session_id
    for counts in results:
        assert set(counts) == {"00", "11"} and abs(counts["00"] - 500) < 150
    row = models.Session.objects.get(uid=batch_id)
    assert row.mode == m.BATCH
    assert row.interactive_ttl == timedelta(seconds=settings.QDASH["BATCH_INTERACTIVE_TTL"])
    assert {job.session_id for job in row.jobs.all()} == {row.pk}
    assert row.jobs.count() == 3


def test_a_bad_program_is_refused_and_stores_nothing(service: Any) -> None:
    backend = service.backend("sim_x")
    unmeasured = QuantumCircuit(2)
    unmeasured.h(0)
    program = QuantumProgram(shots=100)
    program.append_circuit_item(
        generate_preset_pass_manager(backend=backend, optimization_level=1).run(unmeasured)
    )
    with pytest.raises(IBMRuntimeError, match="no classical register"):
        Executor(mode=backend).run(program)
    assert not models.Job.objects.exists()


def test_the_client_warns_by_itself_when_the_instance_has_met_its_allocation(
    service: Any,
) -> None:
    BackendFactory(
        name="sim_y", num_qubits=5, job_overhead=timedelta(seconds=1.5), shot_time=timedelta(0)
    )
    services.allocations_set(path="hub/group/client", seconds=1)
    backend = service.backend("sim_y")
    circuit = bell(backend)
    first = SamplerV2(mode=backend).run([circuit], shots=10)  # 1 s left: it may start
    assert first.result()[0].data.meas.num_shots == 10  # and runs 1.5 s: active work continues

    usage = service.usage()
    assert usage["usage_limit_seconds"] == 1 and usage["usage_consumed_seconds"] >= 1.5
    assert usage["usage_limit_reached"] is True and usage["usage_remaining_seconds"] == 0
    with pytest.warns(UserWarning, match="This instance has met its usage limit"):
        waiting = SamplerV2(mode=backend).run([circuit], shots=10)
    assert waiting.status() == "QUEUED"  # queue mode: accepted, it waits

    assert services.allocations_remove(path="hub/group/client")
    assert waiting.result()[0].data.meas.num_shots == 10
    assert "usage_limit_seconds" not in service.usage()

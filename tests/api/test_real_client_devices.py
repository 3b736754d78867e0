"""The unmodified `qiskit-ibm-runtime` client against device backends on a live server:
the demo's two devices (kyiv, 127 qubits, ECR; fez, 156 qubits, CZ) and a driver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import Target, generate_preset_pass_manager
from qiskit_ibm_runtime import EstimatorV2, QiskitRuntimeService, SamplerV2, Session
from qiskit_ibm_runtime.fake_provider import FakeFez, FakeKyiv

from scheduler.api.auth import instance_crn
from scheduler.auth_tokens import tokens_issue
from tests.api.test_real_client import scheduler_thread  # noqa: F401 - a fixture
from tests.circuits.helpers import bell
from tests.devices.tiny_backend import TINY_PATH, TinyBackend
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
DEVICES = {"sim_kyiv": FakeKyiv, "sim_fez": FakeFez}


@pytest.fixture
def service(live_server: Any, monkeypatch: pytest.MonkeyPatch, scheduler_thread: None) -> Any:  # noqa: F811
    for name, profile, qubits in (("sim_kyiv", "kyiv", 127), ("sim_fez", "fez", 156)):
        BackendFactory(
            name=name,
            num_qubits=qubits,
            profile=profile,
            job_overhead=timedelta(milliseconds=50),
            compile_time=timedelta(milliseconds=700),
            shot_time=timedelta(microseconds=250),
        )
    BackendFactory(name="sim_own", num_qubits=3, driver=TINY_PATH, driver_args={"cx_error": 0.05})
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


def assert_same_target(theirs: Target, own: Target) -> None:
    """Qubits, operation names, the pairs (one way where the device has them one way),
    every error and length, and the qubits' T1 and T2."""
    assert theirs.num_qubits == own.num_qubits
    assert set(theirs.operation_names) == set(own.operation_names)
    for name in own.operation_names:
        if own[name] == {None: None} or None in own[name]:  # control flow: on any qubits
            assert None in theirs[name]
            continue
        assert set(theirs[name]) == set(own[name]), name
        for qargs, props in own[name].items():
            got = theirs[name][qargs]
            if props is None:  # on these qubits, without calibration data (delay)
                assert got is None, (name, qargs)
                continue
            assert (got.error, got.duration) == (props.error, props.duration), (name, qargs)
    for mine, device in zip(theirs.qubit_properties, own.qubit_properties, strict=True):
        assert (mine.t1, mine.t2) == (device.t1, device.t2)


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_the_clients_target_is_the_fake_backends_own(service: Any, name: str) -> None:
    backend = service.backend(name)
    assert_same_target(backend.target, DEVICES[name]().target)
    two_qubit = "ecr" if name == "sim_kyiv" else "cz"
    pairs = set(backend.target[two_qubit])
    if two_qubit == "ecr":
        assert len(pairs) == 144 and not any((b, a) in pairs for a, b in pairs)  # one way


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_transpiled_for_a_device_a_bell_pair_shows_its_noise(service: Any, name: str) -> None:
    backend = service.backend(name)
    isa = generate_preset_pass_manager(backend=backend, optimization_level=1).run(bell())
    job = SamplerV2(mode=backend).run([isa], shots=4000)
    counts = job.result()[0].data.meas.get_counts()
    paired = counts.get("00", 0) + counts.get("11", 0)
    assert paired >= 0.8 * 4000 and counts.get("01", 0) + counts.get("10", 0) > 0
    quantum_seconds = job.usage_estimation["quantum_seconds"]
    assert (
        isinstance(quantum_seconds, float) and 1.7 < quantum_seconds < 1.8
    )  # 50 ms + 700 ms + 4000 × 250 µs + the circuit

    unmeasured = isa.remove_final_measurements(inplace=False)
    zz = SparsePauliOp("ZZ").apply_layout(unmeasured.layout)
    evs = EstimatorV2(mode=backend).run([(unmeasured, zz)]).result()[0].data.evs
    # The device's noise, and the estimate's own (precision 1/64 by default: 1.0625 is 4σ).
    assert 0.7 < float(evs) < 1.0625


def test_in_a_session_repeat_jobs_are_charged_less(service: Any) -> None:
    backend = service.backend("sim_kyiv")
    isa = generate_preset_pass_manager(backend=backend, optimization_level=1).run(bell())
    with Session(backend=backend) as session:
        sampler = SamplerV2(mode=session)
        jobs = [sampler.run([isa], shots=1000) for _ in range(3)]
        for job in jobs:
            job.result()
    estimated = [job.usage_estimation["quantum_seconds"] for job in jobs]
    charged = [job.metrics()["usage"]["quantum_seconds"] for job in jobs]
    assert estimated[1] == estimated[2] == pytest.approx(estimated[0] - 0.7)
    # A job's end is its modeled end, or later when its circuits took longer to run.
    assert charged[1] < charged[0] and charged[2] < charged[0]
    assert all(c >= e - 1e-6 for c, e in zip(charged, estimated, strict=True))


def test_properties_and_target_history_before_the_calibration_have_no_errors(
    service: Any,
) -> None:
    backend = service.backend("sim_kyiv")
    before = datetime(2024, 1, 1, tzinfo=UTC)
    assert backend.properties(datetime=before) is None
    assert backend.target_history(datetime=before)["ecr"][next(iter(backend.target["ecr"]))] is None
    now = backend.properties(datetime=datetime.now(UTC))
    assert now is not None and now.backend_name == "sim_kyiv"
    history = backend.target_history(datetime=datetime.now(UTC))
    assert_same_target(history, FakeKyiv().target)


def test_a_drivers_backend_is_its_own_target_and_runs_the_clients_jobs(service: Any) -> None:
    backend = service.backend("sim_own")
    assert_same_target(backend.target, TinyBackend(cx_error=0.05).target)
    isa = generate_preset_pass_manager(backend=backend, optimization_level=1).run(bell())
    counts = SamplerV2(mode=backend).run([isa], shots=2000).result()[0].data.meas.get_counts()
    paired = counts.get("00", 0) + counts.get("11", 0)
    assert paired >= 0.8 * 2000 and len(counts) > 2

"""Running PUBs on Aer, the wire format of results, and modeled QPU time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from qiskit import QuantumCircuit
from qiskit.primitives import PrimitiveResult
from qiskit_ibm_runtime import RuntimeDecoder

from scheduler import executor
from scheduler.circuits import EXAMPLES, estimator_params, ghz, parse_qasm, sampler_params
from scheduler.executor import ExecutionError, execute, modeled_duration


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def dense(num_qubits: int) -> QuantumCircuit:
    """Entangling layers with non-Clifford rotations: only a statevector can run it."""
    circuit = QuantumCircuit(num_qubits)
    for layer in range(3):
        for qubit in range(num_qubits):
            circuit.rx(0.1 * (qubit + layer + 1), qubit)
        for qubit in range(layer % 2, num_qubits - 1, 2):
            circuit.cx(qubit, qubit + 1)
    circuit.measure_all()
    return circuit


def decoded(text: str) -> PrimitiveResult:
    result = json.loads(text, cls=RuntimeDecoder)
    assert isinstance(result, PrimitiveResult)
    return result


def test_bell_sampler_gives_half_00_half_11_under_meas() -> None:
    result = decoded(execute("sampler", sampler_params([bell()], shots=4000)))

    counts = result[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 4000
    assert 1700 < counts["00"] < 2300
    assert result[0].metadata["shots"] == 4000


def test_qasm_register_name_is_the_data_field() -> None:
    params = sampler_params([parse_qasm(EXAMPLES["bell"])], shots=4000)

    result = decoded(execute("sampler", params))

    counts = result[0].data.c.get_counts()
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 4000


def test_default_shots_come_from_options_or_4000() -> None:
    params = sampler_params([bell()])
    assert decoded(execute("sampler", params))[0].data.meas.num_shots == 4000

    params["options"] = {"default_shots": 123}
    assert decoded(execute("sampler", params))[0].data.meas.num_shots == 123


def test_seeded_runs_repeat() -> None:
    params = sampler_params([bell()], shots=100)
    params["options"] = {"simulator": {"seed_simulator": 42}}

    assert execute("sampler", params) == execute("sampler", params)


def test_qft_example_reads_back_five() -> None:
    result = decoded(execute("sampler", sampler_params([parse_qasm(EXAMPLES["qft"])])))

    assert result[0].data.c.get_counts() == {"0101": 4000}


def test_qasm2_gates_aer_lacks_are_unrolled() -> None:
    circuit = parse_qasm(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\n'
        "x q[0];\nx q[1];\nrccx q[0], q[1], q[2];\nmeasure q -> c;\n"
    )

    result = decoded(execute("sampler", sampler_params([circuit], shots=10)))

    assert result[0].data.c.get_counts() == {"111": 10}


def test_estimator_zz_on_bell_is_one_within_its_std() -> None:
    params = estimator_params(bell(), ["ZZ", "XX", "ZI"], precision=0.01)

    result = decoded(execute("estimator", params))

    evs, stds = result[0].data.evs, result[0].data.stds
    assert list(stds) == [0.01, 0.01, 0.01]
    assert abs(evs[0] - 1) < 5 * stds[0]
    assert abs(evs[1] - 1) < 5 * stds[1]
    assert abs(evs[2]) < 5 * stds[2]
    assert result[0].metadata["target_precision"] == 0.01
    assert result[0].metadata["shots"] == 10_000  # 1 / 0.01^2, as Qiskit Runtime reports it


def test_a_twirled_estimator_reports_the_product_of_its_twirling_counts_as_shots() -> None:
    params = estimator_params(bell(), ["ZZ"])
    twirling = {"enable_gates": True, "num_randomizations": 16, "shots_per_randomization": 100}
    params["options"] = {"default_shots": 400, "twirling": twirling}

    result = decoded(execute("estimator", params))

    assert result[0].metadata["shots"] == 1600 and list(result[0].data.stds) == [0.025]


def test_estimator_uses_the_default_precision() -> None:
    result = decoded(execute("estimator", estimator_params(bell(), ["ZZ"])))

    assert list(result[0].data.stds) == [0.015625]
    assert result[0].metadata["shots"] == 4096


def test_60_qubit_ghz_runs_as_a_stabilizer_circuit() -> None:
    result = decoded(execute("sampler", sampler_params([ghz(60)], shots=1000), max_memory_mb=64))

    assert set(result[0].data.meas.get_counts()) == {"0" * 60, "1" * 60}


def test_statevector_beyond_the_memory_cap_fails_up_front() -> None:
    params = sampler_params([dense(26)], shots=10)

    with pytest.raises(ExecutionError) as raised:
        execute("sampler", params, max_memory_mb=64)

    assert str(raised.value) == "circuit too large to simulate: needs ~1 GB, cap 64 MB"


def test_aer_memory_refusal_is_an_execution_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the up-front check, Aer's own refusal must give the same kind of message.
    monkeypatch.setattr(executor, "_check_memory", lambda circuit, max_memory_mb: None)
    circuit = dense(26).remove_final_measurements(inplace=False)

    for program_id, params in [
        ("sampler", sampler_params([dense(26)], shots=10)),
        ("estimator", estimator_params(circuit, ["Z" * 26])),
    ]:
        with pytest.raises(ExecutionError) as raised:
            execute(program_id, params, max_memory_mb=64)
        assert str(raised.value) == "circuit too large to simulate: needs ~1024 MB, cap 64 MB"


def test_invalid_params_are_an_execution_error() -> None:
    with pytest.raises(ExecutionError, match="^no pubs to run$"):
        execute("sampler", {"pubs": []})


def test_execution_error_is_one_line() -> None:
    params = sampler_params([bell()], shots=10)
    params["pubs"][0][2] = 0

    with pytest.raises(ExecutionError) as raised:
        execute("sampler", params)

    assert "\n" not in str(raised.value)
    assert "shots must be positive" in str(raised.value)


@pytest.mark.parametrize(
    ("overhead", "shot_time", "executions", "expected"),
    [
        (timedelta(seconds=2), timedelta(microseconds=250), 4000, timedelta(seconds=3)),
        (timedelta(seconds=2), timedelta(microseconds=250), 0, timedelta(seconds=2)),
        (timedelta(0), timedelta(milliseconds=1), 1500, timedelta(seconds=1.5)),
    ],
)
def test_modeled_duration_is_overhead_plus_executions(
    overhead: timedelta, shot_time: timedelta, executions: int, expected: timedelta
) -> None:
    assert (
        modeled_duration(overhead=overhead, shot_time=shot_time, executions=executions) == expected
    )


def test_modeled_duration_refuses_negative_executions() -> None:
    with pytest.raises(ValueError):
        modeled_duration(overhead=timedelta(0), shot_time=timedelta(0), executions=-1)

"""The largest input a job may have: declarations, program length, gates, shots, executions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers import SamplerPub
from qiskit_ibm_runtime import RuntimeEncoder

from scheduler.circuits import (
    EXAMPLES,
    CircuitError,
    Limits,
    check_declarations,
    estimator_params,
    inspect,
    qasm_params,
    sampler_params,
)
from tests.circuits.helpers import bell

SMALL = Limits(qubits=10, clbits=20, shots=5000, pubs=3, parameter_sets=4, observables=2, gates=50)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("OPENQASM 2.0;\nqreg q[10000000];", "declares 10000000 qubits; at most 10", 2),
        ("OPENQASM 2.0;\nqreg q[100000000000000000000000000000];", "declares 1000000", 2),
        ("OPENQASM 2.0;\nqreg a[6];\nqreg b[5];", "declares 11 qubits", 3),
        ("OPENQASM 2.0;\ncreg c[21];", "declares 21 bits; at most 20", 2),
        ("OPENQASM 3.0;\nqubit[11] q;", "declares 11 qubits", 2),
        ("OPENQASM 3.0;\n/* a\ncomment */ bit[30] c;", "declares 30 bits", 3),
        ("OPENQASM 3.0;\n" + "qubit q;\n" * 11, "declares 11 qubits", 12),
    ],
)
def test_declared_registers_are_refused_before_parsing(text: str, message: str, line: int) -> None:
    with pytest.raises(CircuitError, match=message) as caught:
        check_declarations(text, qubits=10, clbits=20, chars=1000)
    assert caught.value.line == line


def test_declarations_in_comments_and_within_limits_pass() -> None:
    text = "OPENQASM 2.0;\n// qreg q[999999];\n/* creg c[999999]; */\nqreg q[10];\ncreg c[20];"
    check_declarations(text, qubits=10, clbits=20, chars=1000)


def test_a_long_program_is_refused() -> None:
    with pytest.raises(CircuitError, match="1001 characters; at most 1000"):
        check_declarations("x" * 1001, qubits=10, clbits=20, chars=1000)


def test_qasm_params_checks_the_backend_width_first() -> None:
    with pytest.raises(CircuitError, match="declares 5 qubits; at most 2"):
        qasm_params(
            "sampler",
            EXAMPLES["ghz"],
            shots=None,
            precision=None,
            observables="",
            backend_qubits=2,
            limits=Limits(),
        )


def test_qasm_params_names_the_observables_field() -> None:
    with pytest.raises(CircuitError) as caught:
        qasm_params(
            "estimator",
            EXAMPLES["bell"],
            shots=None,
            precision=None,
            observables="ZZZ",
            backend_qubits=5,
            limits=Limits(),
        )
    assert caught.value.field == "observables"


def test_too_many_gates_are_refused() -> None:
    circuit = QuantumCircuit(1, 1)
    for _ in range(50):
        circuit.x(0)
    circuit.measure(0, 0)
    with pytest.raises(CircuitError, match="51 instructions; at most 50"):
        inspect("sampler", sampler_params([circuit]), SMALL)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["pubs"].extend(p["pubs"][:1] * 3), "4 PUBs; at most 3"),
        (lambda p: p["pubs"][0].__setitem__(2, 5001), "pub 0 has 5001 shots; at most 5000"),
        (lambda p: p["pubs"][0].__setitem__(2, 10**30), "has 10{30} shots"),
        (lambda p: p["pubs"][0].__setitem__(2, 1e30), "shots must be an integer"),
        (lambda p: p["options"].update(default_shots=6000) or p["pubs"][0].pop(), "has 6000 shots"),
    ],
)
def test_sampler_limits(change: Any, message: str) -> None:
    params = sampler_params([bell()], shots=10)
    change(params)
    with pytest.raises(CircuitError, match=message):
        inspect("sampler", params, SMALL)


def test_the_default_shots_count_against_the_limit() -> None:
    params = sampler_params([bell()])  # no shots of its own: the default 4000
    inspect("sampler", params, SMALL)
    with pytest.raises(CircuitError, match="pub 0 has 4000 shots; at most 3000"):
        inspect("sampler", params, Limits(shots=3000))


def test_parameter_sets_and_observables_are_limited() -> None:
    theta = Parameter("theta")
    rotated = QuantumCircuit(1)
    rotated.rx(theta, 0)
    rotated.measure_all()
    pubs = [SamplerPub.coerce((rotated, [[0.1]] * 5))]
    five = {"pubs": json.loads(json.dumps(pubs, cls=RuntimeEncoder)), "options": {}}
    with pytest.raises(CircuitError, match="5 parameter value sets; at most 4"):
        inspect("sampler", five, SMALL)
    with pytest.raises(CircuitError, match="3 observables; at most 2"):
        inspect("estimator", estimator_params(bell(), ["ZZ", "XX", "YY"]), SMALL)


def test_executions_are_limited() -> None:
    tight = Limits(executions=1000, shots=1000)
    with pytest.raises(CircuitError, match="4096 executions"):
        inspect("estimator", estimator_params(bell(), ["ZZ"]), tight)
    assert inspect("sampler", sampler_params([bell()], shots=1000), tight).executions == 1000

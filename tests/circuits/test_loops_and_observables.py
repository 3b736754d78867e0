"""Limits count what a circuit runs, not what is written: loops, branches, observables."""

from __future__ import annotations

import json

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.classical import expr
from qiskit.primitives.containers import EstimatorPub
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import RuntimeEncoder
from qiskit_ibm_runtime.quantum_program import QuantumProgram

from scheduler.circuits import (
    CircuitError,
    Limits,
    estimator_params,
    inspect,
    qasm_params,
    run_cost,
    sampler_params,
)
from tests.executor_results import program_params

SMALL = Limits(gates=1000, depth=1000, observable_terms=10, observable_size=40)


def looped(iterations: int, body: int = 1) -> QuantumCircuit:
    """x on qubit 0, `body` times per iteration, then a measurement."""
    circuit = QuantumCircuit(1, 1)
    with circuit.for_loop(range(iterations)):
        for _ in range(body):
            circuit.x(0)
    circuit.measure(0, 0)
    return circuit


def test_a_loop_body_counts_once_per_iteration() -> None:
    cost = run_cost(looped(10, body=3))
    assert (cost.instructions, cost.depth, cost.loops) == (31, 31, True)


def test_nested_loops_multiply() -> None:
    circuit = QuantumCircuit(1, 1)
    with circuit.for_loop(range(20)), circuit.for_loop(range(30)):
        circuit.x(0)
    assert run_cost(circuit).instructions == 600


def test_a_branch_counts_its_longest_block_and_barriers_count_nothing() -> None:
    circuit = QuantumCircuit(2, 1)
    circuit.measure(0, 0)
    circuit.barrier()
    with circuit.if_test((circuit.clbits[0], 1)) as otherwise:
        circuit.x(1)
    with otherwise:
        circuit.x(1)
        circuit.x(1)
        circuit.x(1)
    assert run_cost(circuit).instructions == 1 + 3
    assert run_cost(circuit).loops is False


def test_depth_follows_the_wires() -> None:
    circuit = QuantumCircuit(2, 2)
    with circuit.for_loop(range(5)):
        circuit.x(0)
    circuit.x(1)  # in parallel with the loop
    circuit.measure([0, 1], [0, 1])
    assert (run_cost(circuit).instructions, run_cost(circuit).depth) == (8, 6)


def test_a_trillion_iteration_loop_sent_as_qpy_is_refused_before_it_is_stored() -> None:
    params = sampler_params([looped(10**12)], shots=10)
    with pytest.raises(CircuitError, match="1000000000001 instructions once its loops"):
        inspect("sampler", params, Limits())


def test_a_range_near_the_largest_length_is_counted_without_unrolling() -> None:
    assert run_cost(looped(10**18)).instructions == 10**18 + 1


def test_a_loop_within_the_limits_is_accepted() -> None:
    inspection = inspect("sampler", sampler_params([looped(100, body=5)], shots=10), SMALL)
    assert inspection.num_qubits == 1


def test_depth_is_limited() -> None:
    deep = Limits(gates=10_000, depth=50)
    with pytest.raises(CircuitError, match="depth 61 once its loops are unrolled; at most 50"):
        inspect("sampler", sampler_params([looped(60)], shots=10), deep)


def repeat_until_one() -> QuantumCircuit:
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    with circuit.while_loop(expr.logic_not(circuit.clbits[0])):
        circuit.x(0)
        circuit.measure(0, 0)
    return circuit


def test_a_while_loop_sent_as_qpy_is_refused() -> None:
    with pytest.raises(CircuitError, match="while loops are not supported"):
        inspect("sampler", sampler_params([repeat_until_one()], shots=10), Limits())


def test_a_while_loop_inside_a_for_loop_is_refused() -> None:
    circuit = QuantumCircuit(1, 1)
    with circuit.for_loop(range(2)), circuit.while_loop((circuit.clbits[0], 0)):
        circuit.measure(0, 0)
    with pytest.raises(CircuitError, match="while loops are not supported"):
        run_cost(circuit)


def test_an_executor_program_with_a_huge_loop_is_refused() -> None:
    program = QuantumProgram(shots=10)
    program.append_circuit_item(looped(10**9))
    with pytest.raises(CircuitError, match="item 0: the circuit has 1000000001 instructions"):
        inspect("executor", program_params(program), Limits())


QASM3_FOR = """\
OPENQASM 3.0;
include "stdgates.inc";
qubit[1] q;
bit[1] c;
for int i in [0:1000000000000] { x q[0]; }
c[0] = measure q[0];
"""

QASM3_WHILE = """\
OPENQASM 3.0;
include "stdgates.inc";
qubit[1] q;
bit[1] c;
c[0] = measure q[0];
while (c[0] == false) { x q[0]; x q[0]; c[0] = measure q[0]; }
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (QASM3_FOR, "1000000000002 instructions once its loops are unrolled"),
        (QASM3_WHILE, "while loops are not supported"),
    ],
)
def test_the_form_refuses_unbounded_openqasm_3(text: str, message: str) -> None:
    with pytest.raises(CircuitError, match=message) as caught:
        qasm_params(
            "sampler",
            text,
            shots=10,
            precision=None,
            observables="",
            backend_qubits=5,
            limits=Limits(),
        )
    assert caught.value.field == "circuit"


def test_observables_are_limited_by_their_pauli_terms() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    eleven_terms = SparsePauliOp([a + b for a in "IXYZ" for b in "IXYZ"][:11])
    pubs = [EstimatorPub.coerce((circuit, eleven_terms))]
    params = {"pubs": json.loads(json.dumps(pubs, cls=RuntimeEncoder)), "options": {}}
    with pytest.raises(CircuitError, match="pub 0's observables have 11 Pauli terms; at most 10"):
        inspect("estimator", params, SMALL)


def test_observables_are_limited_by_terms_times_qubits() -> None:
    wide = QuantumCircuit(5)
    params = estimator_params(wide, ["ZZZZZ", "XXXXX", "YYYYY"])
    assert inspect("estimator", params, Limits(observable_size=15)).num_qubits == 5
    with pytest.raises(CircuitError, match=r"3 Pauli terms on 5 qubits \(15 in all\); at most 14"):
        inspect("estimator", params, Limits(observable_size=14))


def test_a_native_decoders_backtrace_is_left_out_of_the_message() -> None:
    from scheduler.circuits import one_line

    raw = '"binary parsing error: \\n ╺━━━┅ Backtrace ┅━━━╸\\n\\n 0: \x1b[31mqpy::read\x1b[0m'
    assert one_line(ValueError(raw)) == "binary parsing error"

"""OpenQASM text: headers, gates, errors with their lines, includes."""

from __future__ import annotations

import pytest

from scheduler.circuits import (
    EXAMPLES,
    CircuitError,
    ghz,
    parse_qasm,
)
from tests.circuits.helpers import BELL_QASM3


def test_qasm2_bell_reads_into_register_c() -> None:
    circuit = parse_qasm(EXAMPLES["bell"])

    assert circuit.num_qubits == 2
    assert [register.name for register in circuit.cregs] == ["c"]
    assert circuit.count_ops() == {"h": 1, "cx": 1, "measure": 2}


def test_qasm3_is_chosen_by_its_header() -> None:
    circuit = parse_qasm(BELL_QASM3)

    assert [register.name for register in circuit.cregs] == ["c"]
    assert circuit.count_ops() == {"h": 1, "cx": 1, "measure": 2}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_parses_and_measures(name: str) -> None:
    circuit = parse_qasm(EXAMPLES[name])

    assert circuit.count_ops()["measure"] == circuit.num_qubits >= 2


def test_qasm2_legacy_gates_are_known() -> None:
    circuit = parse_qasm(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\n'
        "rccx q[0], q[1], q[2];\ncu1(0.5) q[0], q[1];\n"
    )

    assert circuit.count_ops() == {"rccx": 1, "cu1": 1}


def test_comments_may_precede_the_header() -> None:
    circuit = parse_qasm("// my circuit\n/* two\nlines */\n" + BELL_QASM3)

    assert circuit.num_qubits == 2


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0;\n', 4),
        ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\n\nh q[5];\n', 5),
        ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0]\ncx q[0], q[1];\n', 5),
        ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0]', 4),
        ("OPENQASM 3.0;\nqubit[2] q;\n\n`", 4),
    ],
)
def test_malformed_qasm_error_carries_the_line(text: str, line: int) -> None:
    with pytest.raises(CircuitError) as raised:
        parse_qasm(text)

    assert raised.value.line == line
    assert str(raised.value).startswith(f"line {line}: ")


@pytest.mark.parametrize(
    "text",
    [
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\n\nfoo q[0];\n',
        'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\n\nfoo q[0];\n',
    ],
)
def test_unknown_gate_is_named_with_its_line(text: str) -> None:
    with pytest.raises(CircuitError, match="'foo'") as raised:
        parse_qasm(text)

    assert raised.value.line == 5


def test_ghz_entangles_every_qubit() -> None:
    circuit = ghz(4)

    assert circuit.count_ops() == {"h": 1, "cx": 3, "measure": 4, "barrier": 1}
    assert [register.name for register in circuit.cregs] == ["meas"]
    assert ghz(4, measure=False).count_ops() == {"h": 1, "cx": 3}


def test_text_without_header_is_refused() -> None:
    with pytest.raises(CircuitError, match="header") as raised:
        parse_qasm("\nqreg q[2];\n")

    assert raised.value.line == 2


def test_unsupported_version_is_refused() -> None:
    with pytest.raises(CircuitError, match="unsupported OpenQASM version 4.0"):
        parse_qasm("OPENQASM 4.0;\n")


@pytest.mark.parametrize("gate", ["rz q[0];", "cp q[0], q[1];", "u q[1];"])
def test_a_qasm2_gate_without_its_parameters_is_refused(gate: str) -> None:
    with pytest.raises(CircuitError, match="a gate is missing its parameters: .*Gate"):
        parse_qasm(f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\n{gate}\n')


@pytest.mark.parametrize(
    "text",
    [
        "OPENQASM 2.0;\nqreg q[99999999999999999999\n",  # not read as a declaration: no "]"
        "OPENQASM 2.0;\nqreg q[2];\nU(0, 0, 0) q[18446744073709551616];\n",
    ],
)
def test_an_integer_too_large_for_the_qasm2_lexer_is_refused(text: str) -> None:
    # The lexer panics (pyo3's PanicException, a BaseException) on such an integer.
    with pytest.raises(CircuitError, match="an integer in the program is too large"):
        parse_qasm(text)


@pytest.mark.parametrize("path", ["/etc/hostname", "../../etc/hostname"])
def test_qasm2_never_includes_a_file_of_the_server(path: str) -> None:
    with pytest.raises(CircuitError, match="unable to find") as raised:
        parse_qasm(f'OPENQASM 2.0;\ninclude "{path}";\n')

    assert raised.value.line == 2

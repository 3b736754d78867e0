"""OpenQASM text, as the browser form sends it: the examples, the parser with
line numbers in its errors, and the form's one-PUB job (`qasm_params`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import qiskit.qasm2
import qiskit.qasm3
from qiskit import QuantumCircuit

from scheduler.circuits.errors import CircuitError, one_line
from scheduler.circuits.limits import Limits, check_declarations, check_size
from scheduler.circuits.params import ESTIMATOR, estimator_params, sampler_params
from scheduler.circuits.pubs import check_width, decode_pubs, inspect

EXAMPLES: dict[str, str] = {
    "bell": """\
OPENQASM 2.0;
include "qelib1.inc";
// Bell pair: half the shots read 00, half 11.
qreg q[2];
creg c[2];
h q[0];
cx q[0], q[1];
measure q -> c;
""",
    "ghz": """\
OPENQASM 2.0;
include "qelib1.inc";
// 5-qubit GHZ state: half the shots read 00000, half 11111.
qreg q[5];
creg c[5];
h q[0];
cx q[0], q[1];
cx q[1], q[2];
cx q[2], q[3];
cx q[3], q[4];
measure q -> c;
""",
    "qft": """\
OPENQASM 3.0;
include "stdgates.inc";
// 4-qubit quantum Fourier transform: the phases encode 5, the inverse QFT reads 0101.
qubit[4] q;
bit[4] c;
h q;
p(5 * pi / 8) q[0];
p(5 * pi / 4) q[1];
p(5 * pi / 2) q[2];
p(5 * pi) q[3];
swap q[0], q[3];
swap q[1], q[2];
h q[0];
cp(-pi / 2) q[1], q[0];
h q[1];
cp(-pi / 4) q[2], q[0];
cp(-pi / 2) q[2], q[1];
h q[2];
cp(-pi / 8) q[3], q[0];
cp(-pi / 4) q[3], q[1];
cp(-pi / 2) q[3], q[2];
h q[3];
c = measure q;
""",
}


def ghz(num_qubits: int, measure: bool = True) -> QuantumCircuit:
    """A GHZ circuit (Clifford, so Aer simulates even 127 qubits quickly); demo traffic."""
    circuit = QuantumCircuit(num_qubits, name=f"ghz_{num_qubits}")
    circuit.h(0)
    for qubit in range(1, num_qubits):
        circuit.cx(qubit - 1, qubit)
    if measure:
        circuit.measure_all()
    return circuit


# Skips leading blank lines and comments, then reads the version of the header.
_HEADER = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*OPENQASM\s+([0-9.]+)", re.DOTALL)
# "<input>:6,0: message" (qasm2), "6,0: message" (qasm3 importer), "L6:C0: message" (parser).
_LOCATION = re.compile(r"^(?:<input>:|L)?(\d+)(?:,|:C)\d+:\s*(.*)$", re.DOTALL)


def parse_qasm(text: str) -> QuantumCircuit:
    """OpenQASM 2 or 3 text to a circuit; the `OPENQASM` header picks the version."""
    header = _HEADER.match(text)
    if header is None:
        line = _first_code_line(text)
        raise CircuitError("expected an 'OPENQASM 2.0;' or 'OPENQASM 3.0;' header", line=line)
    version = header.group(1)
    if version.split(".")[0] == "2":
        return _parse_qasm2(text)
    if version.split(".")[0] == "3":
        return _parse_qasm3(text)
    line = text.count("\n", 0, header.start(1)) + 1
    raise CircuitError(f"unsupported OpenQASM version {version}; use 2.0 or 3.0", line=line)


def _parse_qasm2(text: str) -> QuantumCircuit:
    try:
        # An empty include path: only the built-in qelib1.inc, never a file of the server.
        return qiskit.qasm2.loads(
            text, include_path=(), custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS
        )
    except qiskit.qasm2.QASM2ParseError as error:
        raise _located(error.message) from error
    except TypeError as error:  # the parser lets `rz q[0];` through; building the gate fails
        raise CircuitError(f"a gate is missing its parameters: {one_line(error)}") from error
    except BaseException as error:
        if type(error).__name__ != "PanicException":  # pyo3's, not importable by name
            raise
        # The lexer panics on an integer literal wider than 64 bits (`qreg q[99…9` without
        # its `]`, which the declaration check does not read as a declaration).
        if "ParseIntError" in str(error):
            raise CircuitError("an integer in the program is too large") from None
        raise CircuitError(f"invalid OpenQASM 2: {one_line(error)}") from None


def _parse_qasm3(text: str) -> QuantumCircuit:
    try:
        return qiskit.qasm3.loads(text)
    except qiskit.qasm3.QASM3ImporterError as error:
        raise _located(error.message) from error
    except Exception as error:  # the parser's own errors, some without a message
        raise _qasm3_syntax_error(error) from error


def _qasm3_syntax_error(error: Exception) -> CircuitError:
    if str(error):
        located = _located(str(error))
        if located.line is None:
            located = CircuitError(f"invalid OpenQASM 3: {one_line(error)}")
        return located
    # The parser bails out with an ANTLR exception that holds the offending token.
    token = getattr(error.__cause__ and error.__cause__.args[0], "offendingToken", None)
    if token is not None and token.text != "<EOF>":
        return CircuitError(f"syntax error at '{token.text}'", line=token.line)
    if token is not None:
        return CircuitError("unexpected end of input", line=token.line)
    return CircuitError(f"invalid OpenQASM 3: {type(error).__name__}")


def _located(message: str) -> CircuitError:
    match = _LOCATION.match(message.strip())
    if match is None:
        return CircuitError(message.strip())
    return CircuitError(match.group(2).strip(), line=int(match.group(1)))


def _first_code_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.strip().startswith("//"):
            return number
    return 1


_PAULI = re.compile(r"^[IXYZ]+$")


def parse_observables(text: str, num_qubits: int) -> list[str]:
    """Comma-separated Pauli strings ("ZZ, XX"), each as wide as the circuit."""
    observables = [item.strip().upper() for item in text.split(",") if item.strip()]
    if not observables:
        raise CircuitError("give at least one observable, such as " + "Z" * num_qubits)
    for observable in observables:
        if not _PAULI.match(observable):
            raise CircuitError(f"{observable!r} is not a Pauli string of I, X, Y and Z")
        if len(observable) != num_qubits:
            raise CircuitError(
                f"{observable!r} acts on {len(observable)} qubits; the circuit has {num_qubits}"
            )
    return observables


def primitive_params(
    program_id: str,
    circuit: QuantumCircuit,
    *,
    shots: int | None = None,
    precision: float | None = None,
    observables: Sequence[str] = (),
) -> dict[str, Any]:
    """The `params` of a one-PUB job, as the browser form builds it; validated like the API's."""
    if program_id == ESTIMATOR:
        params = estimator_params(circuit, observables, precision)
    else:
        params = sampler_params([circuit], shots)
    decode_pubs(program_id, params)  # e.g. a sampler circuit must measure something
    return params


def qasm_params(
    program_id: str,
    text: str,
    *,
    shots: int | None,
    precision: float | None,
    observables: str,
    backend_qubits: int,
    limits: Limits,
) -> dict[str, Any]:
    """The browser form's job: OpenQASM text to checked `params` (run it in the sandbox)."""
    check_declarations(
        text,
        qubits=min(limits.qubits, backend_qubits),
        clbits=limits.clbits,
        chars=limits.qasm_chars,
    )
    circuit = parse_qasm(text)
    check_size(circuit, limits)
    wanted: list[str] = []
    if program_id == ESTIMATOR:
        try:
            wanted = parse_observables(observables, circuit.num_qubits)
        except CircuitError as error:
            raise CircuitError(error.message, field="observables") from None
    params = primitive_params(
        program_id, circuit, shots=shots, precision=precision, observables=wanted
    )
    inspection = inspect(program_id, params, limits)
    check_width(inspection, backend_qubits)
    return params

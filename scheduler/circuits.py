"""Circuit input for the browser and the API: OpenQASM text, primitive params, PUBs.

Pure functions, no Django. Params use the Qiskit Runtime wire format: what the real
`qiskit-ibm-runtime` client sends as `params` of `POST /jobs`, encoded with its
`RuntimeEncoder` and stored as plain JSON (so a `JSONField` can hold it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeGuard

import qiskit.qasm2
import qiskit.qasm3
from qiskit import QuantumCircuit
from qiskit.primitives.containers import EstimatorPub, SamplerPub
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder

SAMPLER = "sampler"
ESTIMATOR = "estimator"
EXECUTOR = "executor"  # a client's QuantumProgram: scheduler.quantum_programs
PROGRAMS = (SAMPLER, ESTIMATOR, EXECUTOR)

DEFAULT_SHOTS = 4000
# The service's default estimator precision, 1/sqrt(4096).
DEFAULT_PRECISION = 0.015625

Pub: TypeAlias = SamplerPub | EstimatorPub


class CircuitError(ValueError):
    """Bad circuit input; `line` is the 1-based line of OpenQASM text, when known.

    `field` names the input it concerns (the submission form shows it there).
    """

    def __init__(self, message: str, line: int | None = None, field: str = "circuit") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the sandbox's process boundary whole
        return (type(self), (self.message, self.line, self.field))


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The largest input a job may have; larger input is refused before the work it implies.

    The defaults are the settings' defaults (README, "Limits").
    """

    qubits: int = 1_000  # qubits a circuit may use (a backend may allow fewer)
    clbits: int = 10_000  # classical bits a circuit may use
    shots: int = 100_000  # shots of one PUB (the backends' `max_shots`)
    pubs: int = 100  # PUBs of one job (the backends' `max_experiments`)
    parameter_sets: int = 10_000  # parameter value sets of one PUB
    observables: int = 1_000  # observables of one estimator PUB
    gates: int = 100_000  # instructions of one circuit
    qasm_chars: int = 100_000  # length of an OpenQASM program
    executions: int = 5_000_000  # shots times parameter sets over all PUBs of a job


@dataclass(frozen=True)
class Inspection:
    """What a job's checked input implies: its widest circuit and its executions."""

    num_qubits: int
    executions: int


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


def sampler_params(circuits: Iterable[QuantumCircuit], shots: int | None = None) -> dict[str, Any]:
    """The `params` the client's `SamplerV2.run(circuits, shots=shots)` sends, as plain JSON."""
    try:
        pubs = [SamplerPub.coerce(circuit, shots) for circuit in circuits]
    except (ValueError, TypeError) as error:
        raise CircuitError(one_line(error)) from error
    return _wire(pubs)


def estimator_params(
    circuit: QuantumCircuit, observables: Sequence[str], precision: float | None = None
) -> dict[str, Any]:
    """The `params` of `EstimatorV2.run([(circuit, observables)], precision=...)`, as JSON.

    Observables are Pauli strings such as "ZZ" (qubit 0 rightmost). Final measurements
    are dropped, so a sampler example can be reused as an estimator circuit.
    """
    circuit = circuit.remove_final_measurements(inplace=False)
    try:
        pub = EstimatorPub.coerce((circuit, list(observables)), precision)
    except (ValueError, TypeError) as error:
        raise CircuitError(one_line(error)) from error
    return _wire([pub])


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


def _wire(pubs: list[SamplerPub] | list[EstimatorPub]) -> dict[str, Any]:
    # Same keys as the client's options._get_program_inputs with default options.
    params = {"pubs": pubs, "options": {}, "version": 2, "support_qiskit": True}
    wire: dict[str, Any] = json.loads(json.dumps(params, cls=RuntimeEncoder))
    return wire


def decode_pubs(program_id: str, params: Any) -> list[Pub]:
    """The PUBs of stored `params`, validated; raises `CircuitError` for bad input."""
    if program_id not in (SAMPLER, ESTIMATOR):
        raise CircuitError(f"program {program_id!r} takes no pubs; use 'sampler' or 'estimator'")
    if not isinstance(params, dict) or not isinstance(params.get("pubs"), list):
        raise CircuitError("params must be an object with a list of pubs")
    if not params["pubs"]:
        raise CircuitError("no pubs to run")
    try:
        raw = json.loads(json.dumps(params["pubs"]), cls=RuntimeDecoder)
    except Exception as error:  # QPY, base64, zlib and numpy all raise their own types
        raise CircuitError(f"pubs could not be decoded: {one_line(error)}") from error
    return [_coerce(program_id, index, item) for index, item in enumerate(raw)]


def _coerce(program_id: str, index: int, item: Any) -> Pub:
    if isinstance(item, list):
        item = tuple(item)
    try:
        if program_id == SAMPLER:
            pub: Pub = SamplerPub.coerce(item)
            if not pub.circuit.cregs:
                raise ValueError(
                    "the circuit has no classical register to sample; add measurements"
                )
        else:
            pub = EstimatorPub.coerce(item)
    except Exception as error:  # coerce raises ValueError, TypeError, QiskitError, ...
        raise CircuitError(f"pub {index}: {one_line(error)}") from error
    return pub


def check_fits(pubs: Iterable[Pub], num_qubits: int) -> None:
    """Raise `CircuitError` when a PUB's circuit is wider than the backend."""
    for pub in pubs:
        if pub.circuit.num_qubits > num_qubits:
            raise CircuitError(
                f"circuit needs {pub.circuit.num_qubits} qubits; backend has {num_qubits}"
            )


@dataclass(frozen=True)
class RunDefaults:
    """What a PUB without its own shots, precision or seed uses."""

    shots: int = DEFAULT_SHOTS
    precision: float = DEFAULT_PRECISION
    seed: int | None = None


def run_defaults(program_id: str, params: dict[str, Any]) -> RunDefaults:
    """Defaults from the params' options (`default_shots`, `default_precision`, seeds).

    As in Qiskit Runtime, an estimator's `default_shots` sets its precision to
    1/sqrt(shots) unless `default_precision` is given; with twirling on and both
    `num_randomizations` and `shots_per_randomization` given, it runs their product
    of shots whatever the other two say.
    """
    options = params.get("options")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise CircuitError("options must be an object")
    shots = options.get("default_shots")
    if shots is not None and not _positive_int(shots):
        raise CircuitError("options.default_shots must be a positive integer")
    precision = options.get("default_precision")
    if precision is not None and not _positive_number(precision):
        raise CircuitError("options.default_precision must be a positive number")
    simulator = options.get("simulator") or {}
    seed = simulator.get("seed_simulator") if isinstance(simulator, dict) else None
    if program_id == ESTIMATOR:
        seed = options.get("seed_estimator", seed)
        if precision is None and shots is not None:
            precision = 1 / math.sqrt(shots)
        twirled = _twirled_shots(options.get("twirling"))
        if twirled is not None:
            precision = 1 / math.sqrt(twirled)
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)):
        raise CircuitError("the simulator seed must be an integer")
    return RunDefaults(
        shots=shots or DEFAULT_SHOTS,
        precision=float(precision or DEFAULT_PRECISION),
        seed=seed,
    )


def _twirled_shots(twirling: Any) -> int | None:
    """Randomizations times shots per randomization, when twirling is on and both are set."""
    if not isinstance(twirling, dict):
        return None
    if not (twirling.get("enable_gates") or twirling.get("enable_measure")):
        return None
    randomizations = twirling.get("num_randomizations")
    per_randomization = twirling.get("shots_per_randomization")
    if _positive_int(randomizations) and _positive_int(per_randomization):
        return randomizations * per_randomization
    return None


def count_executions(
    program_id: str,
    pubs: Iterable[Pub],
    default_shots: int = DEFAULT_SHOTS,
    default_precision: float = DEFAULT_PRECISION,
) -> int:
    """Shots times parameter sets over all PUBs: what the modeled QPU time charges.

    An estimator PUB of precision p is charged as ceil(1 / p^2) shots per parameter set.
    """
    total = 0
    for pub in pubs:
        if isinstance(pub, SamplerPub):
            shots = pub.shots or default_shots
        else:
            shots = precision_shots(pub.precision or default_precision, default_shots)
        total += shots * pub.parameter_values.size
    return total


def precision_shots(precision: float, default_shots: int = DEFAULT_SHOTS) -> int:
    """The shots an estimator precision stands for: ceil(1 / precision^2).

    The tolerance keeps a precision of 1/sqrt(n) at n shots despite rounding.
    """
    return math.ceil(1 / precision**2 - 1e-6) if precision > 0 else default_shots


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def one_line(error: BaseException) -> str:
    """An error as one line of at most 300 characters, for users and logs."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------- limits
# Register declarations of OpenQASM 2 (`qreg q[5];`) and 3 (`qubit[5] q;`, `qubit q;`).
_REGISTER = re.compile(
    r"\b(?:(?P<reg>qreg|creg)\s+[A-Za-z_]\w*\s*\[(?P<reg_size>[^\]]*)\]"
    r"|(?P<typed>qubit|bit)\s*(?:\[(?P<typed_size>[^\]]*)\])?\s+[A-Za-z_])"
)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def check_declarations(text: str, *, qubits: int, clbits: int, chars: int) -> None:
    """Refuse a program longer than `chars`, or declaring more bits than allowed,
    before any circuit is built.

    Sizes written as integer literals are added up here; a size written as an
    expression is left to the parser, which runs under the sandbox's caps.
    """
    if len(text) > chars:
        raise CircuitError(f"the program has {len(text)} characters; at most {chars} are allowed")
    code = _COMMENT.sub(lambda comment: "\n" * comment.group().count("\n"), text)
    total = {"qubit": 0, "bit": 0}
    for match in _REGISTER.finditer(code):
        size_text = (match.group("reg_size") or match.group("typed_size") or "1").strip()
        if not size_text.isdigit():
            continue
        kind = (
            "qubit" if (match.group("reg") or match.group("typed")) in ("qreg", "qubit") else "bit"
        )
        total[kind] += int(size_text)
        limit = qubits if kind == "qubit" else clbits
        if total[kind] > limit:
            line = code.count("\n", 0, match.start()) + 1
            raise CircuitError(
                f"the program declares {total[kind]} {kind}s; at most {limit} are allowed", line
            )


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


def check_size(circuit: QuantumCircuit, limits: Limits) -> None:
    """Refuse a circuit with more qubits, classical bits or instructions than allowed."""
    for what, have, most in (
        ("qubits", circuit.num_qubits, limits.qubits),
        ("classical bits", circuit.num_clbits, limits.clbits),
        ("instructions", circuit.size(), limits.gates),
    ):
        if have > most:
            raise CircuitError(f"the circuit has {have} {what}; at most {most} are allowed")


def check_width(inspection: Inspection, backend_qubits: int) -> None:
    if inspection.num_qubits > backend_qubits:
        raise CircuitError(
            f"circuit needs {inspection.num_qubits} qubits; backend has {backend_qubits}"
        )


def inspect(program_id: str, params: Any, limits: Limits) -> Inspection:
    """Check a job's `params` against `limits` and decode them (run it in the sandbox).

    Counts are checked on the JSON before anything is decoded; circuits, shots,
    parameter sets and observables after. Raises `CircuitError`.
    """
    if program_id == EXECUTOR:
        from scheduler import quantum_programs  # imports circuits; loaded when first needed

        return quantum_programs.inspect(params, limits)
    raw = params.get("pubs") if isinstance(params, dict) else None
    if isinstance(raw, list) and len(raw) > limits.pubs:
        raise CircuitError(f"the job has {len(raw)} PUBs; at most {limits.pubs} are allowed")
    pubs = decode_pubs(program_id, params)
    defaults = run_defaults(program_id, params)
    for index, pub in enumerate(pubs):
        _check_pub(index, pub, defaults, limits)
    executions = count_executions(program_id, pubs, defaults.shots, defaults.precision)
    if executions > limits.executions:
        raise CircuitError(
            f"the job needs {executions} executions (shots times parameter sets); "
            f"at most {limits.executions} are allowed"
        )
    return Inspection(max(pub.circuit.num_qubits for pub in pubs), executions)


def _check_pub(index: int, pub: Pub, defaults: RunDefaults, limits: Limits) -> None:
    try:
        check_size(pub.circuit, limits)
    except CircuitError as error:
        raise CircuitError(f"pub {index}: {error.message}") from None
    counts = [("parameter value sets", pub.parameter_values.size, limits.parameter_sets)]
    if isinstance(pub, SamplerPub):
        counts.append(("shots", pub.shots or defaults.shots, limits.shots))
    else:
        counts.append(("observables", pub.observables.size, limits.observables))
    for what, have, most in counts:
        if have > most:
            raise CircuitError(f"pub {index} has {have} {what}; at most {most} are allowed")

"""The largest input a job may have, and the checks that refuse larger input before
the work it implies: program length and declared bits, circuit size and depth as it
runs (loops unrolled), observables' terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from qiskit import QuantumCircuit
from qiskit.circuit import ControlFlowOp, ForLoopOp, WhileLoopOp
from qiskit.primitives.containers import EstimatorPub

from scheduler.circuits.errors import CircuitError


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
    observable_terms: int = 50_000  # Pauli terms over all observables of one estimator PUB
    observable_size: int = 5_000_000  # those terms times the qubits they act on
    gates: int = 100_000  # instructions one circuit runs (a loop's body once per iteration)
    depth: int = 100_000  # depth of one circuit as it runs (loops unrolled)
    qasm_chars: int = 100_000  # length of an OpenQASM program
    executions: int = 5_000_000  # shots times parameter sets over all PUBs of a job


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


def check_size(circuit: QuantumCircuit, limits: Limits) -> None:
    """Refuse a circuit with more qubits, classical bits, instructions or depth than allowed.

    Instructions and depth are counted as the circuit runs: a `for` loop's body once per
    iteration (nested loops multiply), the longest branch of an `if` or `switch`. A
    `while` loop has no bound, so it is refused.
    """
    for what, have, most in (
        ("qubits", circuit.num_qubits, limits.qubits),
        ("classical bits", circuit.num_clbits, limits.clbits),
    ):
        if have > most:
            raise CircuitError(f"the circuit has {have} {what}; at most {most} are allowed")
    cost = run_cost(circuit)
    unrolled = " once its loops are unrolled" if cost.loops else ""
    if cost.instructions > limits.gates:
        raise CircuitError(
            f"the circuit has {cost.instructions} instructions{unrolled}; "
            f"at most {limits.gates} are allowed"
        )
    if cost.depth > limits.depth:
        raise CircuitError(
            f"the circuit has depth {cost.depth}{unrolled}; at most {limits.depth} is allowed"
        )


@dataclass(frozen=True)
class Cost:
    """What a circuit runs: its instructions and its depth with every loop unrolled."""

    instructions: int
    depth: int
    loops: bool  # whether it has a `for` loop (error messages say it was unrolled)


def run_cost(circuit: QuantumCircuit) -> Cost:
    """The instructions and depth `circuit` runs, without unrolling anything.

    Barriers and other directives count for neither, as in `QuantumCircuit.size()` and
    `depth()`. Raises `CircuitError` for a `while` loop, which may never end.
    """
    try:
        return _cost(circuit)
    except RecursionError:
        raise CircuitError("the circuit's control flow is nested too deeply") from None


def _cost(circuit: QuantumCircuit) -> Cost:
    levels: dict[Any, int] = {}  # wire -> depth reached on it
    instructions = 0
    loops = False
    for instruction in circuit.data:
        operation = instruction.operation
        if isinstance(operation, WhileLoopOp):
            raise CircuitError(
                "while loops are not supported: a job must end, so its loops need a bound; "
                "use a for loop over a range"
            )
        if isinstance(operation, ControlFlowOp):
            inner = [_cost(block) for block in operation.blocks]
            times = _iterations(operation) if isinstance(operation, ForLoopOp) else 1
            loops = loops or isinstance(operation, ForLoopOp) or any(c.loops for c in inner)
            size = times * max((c.instructions for c in inner), default=0)
            depth = times * max((c.depth for c in inner), default=0)
        elif getattr(operation, "_directive", False):
            continue
        else:
            size = depth = 1
        instructions += size
        wires = (*instruction.qubits, *instruction.clbits)
        reached = max((levels.get(wire, 0) for wire in wires), default=0) + depth
        for wire in wires:
            levels[wire] = reached
    return Cost(instructions, max(levels.values(), default=0), loops)


def _iterations(loop: ForLoopOp) -> int:
    indexset = loop.params[0]
    if isinstance(indexset, range):  # len() overflows past sys.maxsize; this does not
        return max(0, -(-(indexset.stop - indexset.start) // indexset.step))
    return len(indexset)


def check_observable_terms(index: int, pub: EstimatorPub, limits: Limits) -> None:
    """Refuse observables with more Pauli terms, or terms times qubits, than allowed:
    their count alone says nothing of their size."""
    terms = sum(len(observable) for observable in pub.observables.ravel().tolist())
    if terms > limits.observable_terms:
        raise CircuitError(
            f"pub {index}'s observables have {terms} Pauli terms; "
            f"at most {limits.observable_terms} are allowed"
        )
    size = terms * pub.observables.num_qubits
    if size > limits.observable_size:
        raise CircuitError(
            f"pub {index}'s observables have {terms} Pauli terms on "
            f"{pub.observables.num_qubits} qubits ({size} in all); "
            f"at most {limits.observable_size} are allowed"
        )

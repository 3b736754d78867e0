"""The device's noise in Pauli form, and two ways to sample with it past the density
matrix: Pauli frames for Clifford circuits, and trajectories for the rest.

Each gate is followed by a depolarizing error and, on each of its qubits, the Pauli
twirl of thermal relaxation over the gate's length (T1, T2); measurements flip with
the readout error. The parameters are those Aer's `NoiseModel.from_backend` uses,
with the depolarizing part solved the same way, so the two agree on every gate's
error. Pure: no Django.

Pauli frames (the method of Stim): one noiseless reference sample, then every shot's
Pauli frame pushed through the circuit at once, as bit arrays; a measurement reads
the reference flipped by the frame's X part. Exact for a Clifford circuit under Pauli
noise, and its cost is linear in shots, qubits and gates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ControlFlowOp, Delay, Instruction, ParameterExpression
from qiskit.quantum_info import Clifford
from qiskit.transpiler import Target

SKIP = frozenset({"barrier"})


@dataclass(frozen=True)
class PauliChannel:
    """Independent errors after an instruction: a depolarizing one on all its qubits
    (probability of a non-identity Pauli) and a Pauli one per qubit (px, py, pz)."""

    depolarizing: float
    per_qubit: tuple[tuple[float, float, float], ...]

    @property
    def silent(self) -> bool:
        return self.depolarizing <= 0 and all(sum(p) <= 0 for p in self.per_qubit)


@dataclass(frozen=True)
class PauliNoise:
    """The Pauli form of a device's noise on a set of qubits (indices 0..n-1)."""

    gates: dict[tuple[str, tuple[int, ...]], PauliChannel]
    readout: tuple[float, ...]  # per qubit: the probability a measurement reads wrong
    t1: tuple[float, ...]
    t2: tuple[float, ...]
    dt: float

    def after(self, operation: Instruction, qubits: tuple[int, ...]) -> PauliChannel | None:
        if isinstance(operation, Delay):
            return _relaxation_only(self, operation, qubits)
        return self.gates.get((operation.name, qubits))


def pauli_noise(target: Target) -> PauliNoise:
    """The Pauli form of `target`'s errors (a small target: a device's active qubits)."""
    n = target.num_qubits
    props = target.qubit_properties or [None] * n
    t1 = tuple(_or_inf(getattr(p, "t1", None)) for p in props)
    t2 = tuple(min(_or_inf(getattr(p, "t2", None)), 2 * t) for p, t in zip(props, t1, strict=True))
    gates: dict[tuple[str, tuple[int, ...]], PauliChannel] = {}
    readout = [0.0] * n
    for name in target.operation_names:
        entries = target[name]
        for qargs, inst in entries.items():
            if qargs is None or inst is None:
                continue
            if name == "measure":
                readout[qargs[0]] = float(inst.error or 0.0)
                continue
            if name in ("reset", "delay"):
                continue
            relax = tuple(_twirled_relaxation(inst.duration or 0.0, t1[q], t2[q]) for q in qargs)
            depolarizing = _depolarizing(float(inst.error or 0.0), relax)
            channel = PauliChannel(depolarizing, relax)
            if not channel.silent:
                gates[(name, tuple(qargs))] = channel
    return PauliNoise(gates, tuple(readout), t1, t2, float(target.dt or 0.0))


def _or_inf(value: float | None) -> float:
    return math.inf if value is None or value <= 0 else float(value)


def _twirled_relaxation(duration: float, t1: float, t2: float) -> tuple[float, float, float]:
    """The Pauli twirl of amplitude and phase damping over `duration`: (px, py, pz)."""
    if duration <= 0:
        return (0.0, 0.0, 0.0)
    decay = 1 - math.exp(-duration / t1)
    dephase = 1 - math.exp(-duration / t2)
    px = py = decay / 4
    return (px, py, max(0.0, dephase / 2 - decay / 4))


def _depolarizing(error: float, relax: tuple[tuple[float, float, float], ...]) -> float:
    """The probability of a non-identity Pauli from the depolarizing part, so that it and
    the relaxation together have the gate's average infidelity (as Aer solves it)."""
    n = len(relax)
    dim = 2**n
    error = min(error, dim / (dim + 1))
    process = math.prod(1 - sum(p) for p in relax)  # the relaxation's process fidelity
    relax_fidelity = (dim * process + 1) / (dim + 1)
    if error <= 1 - relax_fidelity:
        return 0.0
    param = dim * (error - (1 - relax_fidelity)) / (dim * relax_fidelity - 1)
    param = min(param, 4**n / (4**n - 1))
    return param * (4**n - 1) / 4**n


def _relaxation_only(noise: PauliNoise, delay: Delay, qubits: tuple[int, ...]) -> PauliChannel:
    value = delay.params[0]
    if isinstance(value, ParameterExpression):
        return PauliChannel(0.0, ((0.0, 0.0, 0.0),) * len(qubits))
    unit = delay.unit
    seconds = float(value) * (
        noise.dt if unit == "dt" else {"s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}.get(unit, 0)
    )
    relax = tuple(_twirled_relaxation(seconds, noise.t1[q], noise.t2[q]) for q in qubits)
    return PauliChannel(0.0, relax)


# ------------------------------------------------------------------ Clifford circuits
_SYMPLECTIC: dict[tuple[Any, ...], np.ndarray | None] = {}


def symplectic(operation: Instruction) -> np.ndarray | None:
    """The gate's action on Pauli frames, or None when it is not Clifford."""
    if operation.name in ("measure", "reset", "delay", "barrier"):
        return None
    try:
        key = (operation.name, operation.num_qubits, *(float(p) for p in operation.params))
    except TypeError:  # an unbound parameter, or a parameter that is no number
        return None
    if key not in _SYMPLECTIC:
        try:
            matrix: np.ndarray | None = Clifford(operation).symplectic_matrix.astype(bool)
        except Exception:  # noqa: BLE001 - not a Clifford gate (or no Clifford form known)
            matrix = None
        if len(_SYMPLECTIC) > 1024:
            _SYMPLECTIC.clear()
        _SYMPLECTIC[key] = matrix
    return _SYMPLECTIC[key]


def is_clifford(circuit: QuantumCircuit) -> bool:
    """Whether Pauli frames can run `circuit`: Clifford gates, measurements, resets and
    delays, no control flow."""
    for instruction in circuit.data:
        operation = instruction.operation
        if isinstance(operation, ControlFlowOp):
            return False
        if operation.name in ("measure", "reset", "delay", "barrier"):
            continue
        if symplectic(operation) is None:
            return False
    return True


def frame_flips(
    circuit: QuantumCircuit, noise: PauliNoise, shots: int, rng: np.random.Generator
) -> np.ndarray:
    """For every shot, which classical bits read the opposite of a noiseless reference
    run: a (shots, clbits) boolean array. `circuit` must pass `is_clifford`."""
    n = circuit.num_qubits
    x = np.zeros((n, shots), dtype=bool)
    z = rng.random((n, shots)) < 0.5  # a Z on |0> changes nothing: randomised frames
    flips = np.zeros((circuit.num_clbits, shots), dtype=bool)
    qubit_index = {bit: i for i, bit in enumerate(circuit.qubits)}
    clbit_index = {bit: i for i, bit in enumerate(circuit.clbits)}
    for instruction in circuit.data:
        operation = instruction.operation
        qubits = tuple(qubit_index[bit] for bit in instruction.qubits)
        name = operation.name
        if name in SKIP:
            continue
        if name == "measure":
            q, c = qubits[0], clbit_index[instruction.clbits[0]]
            flips[c] = x[q] ^ (rng.random(shots) < noise.readout[q])
            z[q] = rng.random(shots) < 0.5
            continue
        if name == "reset":
            x[qubits[0]] = False
            z[qubits[0]] = rng.random(shots) < 0.5
            continue
        if name != "delay":
            matrix = symplectic(operation)
            assert matrix is not None
            _conjugate(x, z, qubits, matrix)
        channel = noise.after(operation, qubits)
        if channel is not None:
            _apply_channel(x, z, qubits, channel, rng)
    return flips.T


def _conjugate(x: np.ndarray, z: np.ndarray, qubits: tuple[int, ...], m: np.ndarray) -> None:
    k = len(qubits)
    xs = [x[q].copy() for q in qubits]
    zs = [z[q].copy() for q in qubits]
    for j, q in enumerate(qubits):
        new_x = np.zeros_like(xs[0])
        new_z = np.zeros_like(xs[0])
        for i in range(k):
            if m[i, j]:
                new_x ^= xs[i]
            if m[k + i, j]:
                new_x ^= zs[i]
            if m[i, k + j]:
                new_z ^= xs[i]
            if m[k + i, k + j]:
                new_z ^= zs[i]
        x[q] = new_x
        z[q] = new_z


def _apply_channel(
    x: np.ndarray,
    z: np.ndarray,
    qubits: tuple[int, ...],
    channel: PauliChannel,
    rng: np.random.Generator,
) -> None:
    shots = x.shape[1]
    k = len(qubits)
    if channel.depolarizing > 0:
        hit = rng.random(shots) < channel.depolarizing
        count = int(np.count_nonzero(hit))
        if count:
            which = rng.integers(1, 4**k, size=count)  # a non-identity Pauli on the k qubits
            for j, q in enumerate(qubits):
                x[q, hit] ^= ((which >> (2 * j)) & 1).astype(bool)
                z[q, hit] ^= ((which >> (2 * j + 1)) & 1).astype(bool)
    for q, (px, py, pz) in zip(qubits, channel.per_qubit, strict=True):
        if px + py + pz <= 0:
            continue
        u = rng.random(shots)
        x[q] ^= u < px + py  # X or Y
        z[q] ^= (u >= px) & (u < px + py + pz)  # Y or Z


# ----------------------------------------------------------------------- trajectories
PAULI_GATES = ("id", "x", "z", "y")  # indexed by x + 2 z


def trajectory(
    circuit: QuantumCircuit, noise: PauliNoise, rng: np.random.Generator
) -> QuantumCircuit:
    """`circuit` with one draw of its Pauli errors written in as gates (control flow is
    copied as it is: errors inside it are not drawn)."""
    out = circuit.copy_empty_like()
    qubit_index = {bit: i for i, bit in enumerate(circuit.qubits)}
    for instruction in circuit.data:
        out.append(instruction)
        operation = instruction.operation
        if isinstance(operation, ControlFlowOp) or operation.name in ("measure", "reset"):
            continue
        qubits = tuple(qubit_index[bit] for bit in instruction.qubits)
        channel = noise.after(operation, qubits)
        if channel is None:
            continue
        errors = [[False, False] for _ in qubits]
        if channel.depolarizing > 0 and rng.random() < channel.depolarizing:
            which = int(rng.integers(1, 4 ** len(qubits)))
            for j in range(len(qubits)):
                errors[j][0] ^= bool((which >> (2 * j)) & 1)
                errors[j][1] ^= bool((which >> (2 * j + 1)) & 1)
        for j, (px, py, pz) in enumerate(channel.per_qubit):
            u = rng.random()
            errors[j][0] ^= u < px + py
            errors[j][1] ^= px <= u < px + py + pz
        for j, (ex, ez) in enumerate(errors):
            if ex or ez:
                getattr(out, PAULI_GATES[int(ex) + 2 * int(ez)])(instruction.qubits[j])
    return out

"""Circuits transpiled for the profiles the device tests use (made once per process)."""

from __future__ import annotations

import functools

from qiskit import QuantumCircuit
from qiskit.transpiler import generate_preset_pass_manager

from scheduler.devices.device import Device, target
from tests.circuits.helpers import bell

KYIV = Device(profile="kyiv")  # 127 qubits, ECR one way
FEZ = Device(profile="fez")  # 156 qubits, CZ


def ghz(n: int, measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(n)
    circuit.h(0)
    for q in range(1, n):
        circuit.cx(q - 1, q)
    if measure:
        circuit.measure_all()
    return circuit


@functools.cache
def isa(device: Device, name: str, width: int = 2, measure: bool = True) -> QuantumCircuit:
    """`bell` or `ghz` (of `width`) transpiled for `device` (level 1: the layout avoids the
    worst qubits, and gates stay Clifford)."""
    circuit = bell(measure) if name == "bell" else ghz(width, measure)
    manager = generate_preset_pass_manager(
        optimization_level=1, target=target(device), seed_transpiler=3
    )
    return manager.run(circuit)

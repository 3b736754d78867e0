"""The Pauli form of a device's noise, and Pauli frames."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit_aer.noise import thermal_relaxation_error
from qiskit_aer.noise.device.models import _device_depolarizing_error

from scheduler.devices import noise, paulis
from tests.devices.circuits import KYIV, isa


def test_the_depolarizing_part_is_aers_for_the_same_gate_error_and_relaxation() -> None:
    active = tuple(sorted(isa(KYIV, "bell").layout.final_index_layout()))
    target = noise.sub_target(KYIV, active)
    (pair,) = list(target["ecr"])
    props = target["ecr"][pair]
    form = paulis.pauli_noise(target).gates[("ecr", pair)]
    relax = [
        thermal_relaxation_error(
            target.qubit_properties[q].t1,
            min(target.qubit_properties[q].t2, 2 * target.qubit_properties[q].t1),
            props.duration,
        )
        for q in pair
    ]
    aers = _device_depolarizing_error(pair, props.error, relax[0].expand(relax[1]))
    identity = aers.probabilities[0]  # depolarizing_error lists the identity first
    assert form.depolarizing == pytest.approx(1 - identity, rel=1e-6)
    # Twirling keeps each relaxation channel's fidelity: px = py = (1 - e^(-t/T1)) / 4.
    t1 = target.qubit_properties[pair[0]].t1
    assert form.per_qubit[0][0] == pytest.approx((1 - np.exp(-props.duration / t1)) / 4)


def test_frames_randomise_a_bell_pair_together_and_an_x_error_splits_it() -> None:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    quiet = paulis.PauliNoise({}, (0.0, 0.0), (1.0, 1.0), (1.0, 1.0), 1e-9)
    rng = np.random.default_rng(1)
    flips = paulis.frame_flips(circuit, quiet, 2000, rng)
    # Noiseless: a shot reads the reference or its opposite on both bits, half and half.
    assert (flips[:, 0] == flips[:, 1]).all() and 0.45 < flips[:, 0].mean() < 0.55
    x_on_1 = paulis.PauliChannel(0.0, ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0)))  # after the CX
    noisy = paulis.PauliNoise({("cx", (0, 1)): x_on_1}, (0.0, 0.0), (1.0, 1.0), (1.0, 1.0), 1e-9)
    flips = paulis.frame_flips(circuit, noisy, 2000, rng)
    assert (flips[:, 0] != flips[:, 1]).all()


def test_readout_errors_flip_that_share_of_measurements() -> None:
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    readout = paulis.PauliNoise({}, (0.1,), (1.0,), (1.0,), 1e-9)
    flips = paulis.frame_flips(circuit, readout, 20_000, np.random.default_rng(2))
    assert flips.mean() == pytest.approx(0.1, abs=0.01)


def test_a_non_clifford_angle_or_control_flow_is_no_frame_circuit() -> None:
    circuit = QuantumCircuit(1, 1)
    circuit.rz(np.pi / 2, 0)
    circuit.sx(0)
    assert paulis.is_clifford(circuit)
    circuit.rz(0.3, 0)
    assert not paulis.is_clifford(circuit)
    looped = QuantumCircuit(1, 1)
    with looped.for_loop(range(2)):
        looped.x(0)
    assert not paulis.is_clifford(looped)

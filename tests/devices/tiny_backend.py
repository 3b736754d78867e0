"""A facility's own backend, as a driver: a Qiskit `BackendV2` of the tests' own.

Three qubits in a line, CX one way (0→1, 1→2), with gate errors and lengths, T1/T2
and readout errors; it runs circuits on Aer with the noise its `Target` implies.
"""

from __future__ import annotations

from typing import Any

from qiskit.circuit import Measure, Parameter, Reset
from qiskit.circuit.library import CXGate, RZGate, SXGate, XGate
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import InstructionProperties, QubitProperties, Target
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel

PAIRS = [(0, 1), (1, 2)]


class TinyBackend(BackendV2):
    """Three qubits in a line; `cx_error` is the error of both CX gates."""

    def __init__(self, cx_error: float = 0.02, readout_error: float = 0.01) -> None:
        super().__init__(name="tiny", backend_version="0.1")
        target = Target(
            num_qubits=3,
            dt=1e-9,
            qubit_properties=[
                QubitProperties(t1=100e-6 + 10e-6 * q, t2=80e-6, frequency=5e9 + 1e8 * q)
                for q in range(3)
            ],
        )
        one = {(q,): InstructionProperties(duration=40e-9, error=3e-4) for q in range(3)}
        target.add_instruction(SXGate(), dict(one))
        target.add_instruction(XGate(), dict(one))
        target.add_instruction(
            RZGate(Parameter("theta")), {(q,): InstructionProperties(0.0, 0.0) for q in range(3)}
        )
        target.add_instruction(
            CXGate(), {p: InstructionProperties(duration=300e-9, error=cx_error) for p in PAIRS}
        )
        target.add_instruction(
            Measure(),
            {(q,): InstructionProperties(duration=1e-6, error=readout_error) for q in range(3)},
        )
        target.add_instruction(
            Reset(), {(q,): InstructionProperties(duration=1e-6) for q in range(3)}
        )
        self._target = target
        self._simulator = AerSimulator(noise_model=NoiseModel.from_backend(self))

    @property
    def target(self) -> Target:
        return self._target

    @property
    def max_circuits(self) -> None:
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options(shots=1024)

    def run(self, run_input: Any, **options: Any) -> Any:
        return self._simulator.run(run_input, **options)


TINY_PATH = "tests.devices.tiny_backend.TinyBackend"


class NotABackend:
    """A class that is not a Qiskit backend (the admin refuses it)."""

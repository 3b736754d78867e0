"""A job's `params` in the Qiskit Runtime wire format, and the defaults they imply.

What the real `qiskit-ibm-runtime` client sends as `params` of `POST /jobs`, encoded
with its `RuntimeEncoder` and stored as plain JSON (so a `JSONField` can hold it);
the options' defaults for PUBs without their own shots, precision or seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from qiskit import QuantumCircuit
from qiskit.primitives.containers import EstimatorPub, SamplerPub
from qiskit_ibm_runtime import RuntimeEncoder

from scheduler.circuits.errors import CircuitError, one_line

SAMPLER = "sampler"
ESTIMATOR = "estimator"
EXECUTOR = "executor"  # a client's QuantumProgram: scheduler.quantum_programs
PROGRAMS = (SAMPLER, ESTIMATOR, EXECUTOR)

DEFAULT_SHOTS = 4000
# The service's default estimator precision, 1/sqrt(4096).
DEFAULT_PRECISION = 0.015625


def sampler_params(circuits: Iterable[QuantumCircuit], shots: int | None = None) -> dict[str, Any]:
    """The `params` the client's `SamplerV2.run(circuits, shots=shots)` sends, as plain JSON."""
    try:
        pubs = [SamplerPub.coerce(circuit, shots) for circuit in circuits]
    except (ValueError, TypeError) as error:
        raise CircuitError(one_line(error)) from error
    return pubs_params(pubs)


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
    return pubs_params([pub])


def pubs_params(pubs: list[SamplerPub] | list[EstimatorPub]) -> dict[str, Any]:
    """The `params` the client's primitives send for `pubs`, as plain JSON."""
    # Same keys as the client's options._get_program_inputs with default options.
    params = {"pubs": pubs, "options": {}, "version": 2, "support_qiskit": True}
    wire: dict[str, Any] = json.loads(json.dumps(params, cls=RuntimeEncoder))
    return wire


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


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0

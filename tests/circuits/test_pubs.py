"""Decoding PUBs, checking them against the backend, and the modeled work they run."""

from __future__ import annotations

from typing import Any

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers import SamplerPub

from scheduler.circuits import (
    EXAMPLES,
    CircuitError,
    Limits,
    check_width,
    count_executions,
    decode_pubs,
    estimator_params,
    inspect,
    parse_qasm,
    run_defaults,
    sampler_params,
)
from tests.circuits.helpers import bell


@pytest.mark.parametrize(
    ("program_id", "params", "message"),
    [
        ("executor", {"pubs": []}, "program 'executor' takes no pubs"),
        ("sampler", [], "params must be an object"),
        ("sampler", {"options": {}}, "params must be an object"),
        ("sampler", {"pubs": []}, "no pubs"),
        (
            "sampler",
            {"pubs": [[{"__type__": "QuantumCircuit", "__value__": "bm90IHFweQ=="}]]},
            "pubs could not be decoded",
        ),
        ("sampler", {"pubs": [["not a circuit"]]}, "pub 0: "),
        ("estimator", {"pubs": [[None, ["ZZ"]]]}, "pub 0: "),
    ],
)
def test_malformed_params_are_refused(program_id: str, params: Any, message: str) -> None:
    with pytest.raises(CircuitError, match=message):
        decode_pubs(program_id, params)


def test_sampler_pub_without_classical_register_is_refused() -> None:
    params = sampler_params([bell(measure=False)], shots=10)

    with pytest.raises(CircuitError, match="pub 0: the circuit has no classical register"):
        decode_pubs("sampler", params)


def test_sampler_pub_with_negative_shots_is_refused() -> None:
    params = sampler_params([bell()], shots=10)
    params["pubs"][0][2] = -5

    with pytest.raises(CircuitError, match="pub 0: .*shots"):
        decode_pubs("sampler", params)


def test_circuit_wider_than_the_backend_does_not_fit() -> None:
    found = inspect("sampler", sampler_params([parse_qasm(EXAMPLES["ghz"])]), Limits())

    check_width(found, 5)
    with pytest.raises(CircuitError, match="^circuit needs 5 qubits; backend has 4$"):
        check_width(found, 4)


# --- modeled work -------------------------------------------------------------


def test_sampler_executions_are_shots_times_parameter_sets() -> None:
    theta = Parameter("theta")
    rotated = QuantumCircuit(1)
    rotated.rx(theta, 0)
    rotated.measure_all()
    pubs = [SamplerPub.coerce(bell(), 1000), SamplerPub.coerce((rotated, [[0.1], [0.2], [0.3]]))]

    assert count_executions("sampler", pubs, default_shots=4000) == 1000 + 3 * 4000


def test_estimator_executions_follow_precision() -> None:
    precise = decode_pubs("estimator", estimator_params(bell(), ["ZZ"], precision=0.01))
    default = decode_pubs("estimator", estimator_params(bell(), ["ZZ"]))

    assert count_executions("estimator", precise) == 10_000
    assert count_executions("estimator", default) == 4096


def test_run_defaults_read_the_options() -> None:
    params = {"options": {"default_shots": 100, "simulator": {"seed_simulator": 7}}}

    sampler = run_defaults("sampler", params)
    estimator = run_defaults("estimator", params)

    assert (sampler.shots, sampler.seed) == (100, 7)
    assert estimator.precision == pytest.approx(0.1)
    assert run_defaults("sampler", {"options": {}}).shots == 4000


@pytest.mark.parametrize(
    ("twirling", "precision"),
    [
        ({"enable_gates": True, "num_randomizations": 16, "shots_per_randomization": 100}, 0.025),
        ({"enable_measure": True, "num_randomizations": 4, "shots_per_randomization": 25}, 0.1),
        ({"enable_gates": False, "num_randomizations": 16, "shots_per_randomization": 100}, 0.05),
        ({"enable_gates": True, "num_randomizations": 16}, 0.05),  # shots per one: "auto"
    ],
)
def test_an_estimator_twirled_with_both_counts_runs_their_product(
    twirling: dict, precision: float
) -> None:
    options = {"default_precision": 0.05, "default_shots": 400, "twirling": twirling}

    defaults = run_defaults("estimator", {"options": options})

    assert defaults.precision == pytest.approx(precision)
    assert run_defaults("sampler", {"options": options}).shots == 400


@pytest.mark.parametrize(
    "options",
    [{"default_shots": 0}, {"default_shots": "many"}, {"default_precision": -1}, []],
)
def test_bad_run_options_are_refused(options: Any) -> None:
    with pytest.raises(CircuitError):
        run_defaults("estimator", {"options": options})

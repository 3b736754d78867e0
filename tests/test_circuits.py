"""Circuit input: OpenQASM parsing, the client's wire format, PUB checks."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers import EstimatorPub, SamplerPub
from qiskit_ibm_runtime import EstimatorV2, RuntimeDecoder, RuntimeEncoder, SamplerV2, Session
from qiskit_ibm_runtime.api.rest.runtime import Runtime

from scheduler.circuits import (
    EXAMPLES,
    CircuitError,
    Limits,
    check_declarations,
    check_width,
    count_executions,
    decode_pubs,
    estimator_params,
    ghz,
    inspect,
    parse_qasm,
    qasm_params,
    run_defaults,
    sampler_params,
)

BELL_QASM3 = """\
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""


def bell(measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    return circuit


class _HttpRecorder:
    """Stands in for the client's HTTP session: keeps the body of `POST /jobs`."""

    def __init__(self) -> None:
        self.headers: Any = {}
        self.body = ""

    def post(self, url: str, data: str, **kwargs: Any) -> Any:
        self.body = data
        return self

    def json(self) -> dict[str, str]:
        return {"id": "job-1", "backend": "qdash_a"}


class _RecordingSession(Session):
    """A session that sends jobs through the client's own REST adapter to a recorder."""

    def __init__(self) -> None:  # no service, no backend: nothing to connect to
        self._service = None
        self._backend = None
        self.http = _HttpRecorder()

    def _run(self, program_id: str, inputs: dict, **kwargs: Any) -> Any:
        Runtime(self.http).program_run(program_id=program_id, backend_name="qdash_a", params=inputs)


def client_params(primitive: type, pubs: list, **run: Any) -> dict:
    """The `params` the real client posts for `primitive(mode=session).run(pubs, **run)`."""
    session = _RecordingSession()
    with pytest.warns(DeprecationWarning, match=f"{primitive.__name__} class is deprecated"):
        instance = primitive(mode=session)
    instance.run(pubs, **run)
    params: dict = json.loads(session.http.body)["params"]
    return params


# --- OpenQASM ---------------------------------------------------------------


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


# --- params in the client's wire format --------------------------------------


def test_sampler_params_are_what_the_client_sends() -> None:
    circuits = [bell(), parse_qasm(EXAMPLES["ghz"])]

    ours = sampler_params(circuits, shots=4000)
    theirs = client_params(SamplerV2, circuits, shots=4000)

    assert ours == theirs
    assert ours["options"] == {} and ours["version"] == 2 and ours["support_qiskit"] is True
    for mine, client in zip(
        decode_pubs("sampler", ours), decode_pubs("sampler", theirs), strict=True
    ):
        assert isinstance(mine, SamplerPub)
        assert isinstance(client, SamplerPub)
        assert mine.circuit == client.circuit
        assert mine.shots == client.shots == 4000


def test_sampler_params_keep_parameter_values() -> None:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.measure_all()
    values = np.array([[0.0], [np.pi], [np.pi / 2]])

    theirs = client_params(SamplerV2, [(circuit, values)])
    (pub,) = decode_pubs("sampler", theirs)

    assert pub.shots is None
    assert pub.parameter_values.shape == (3,)
    np.testing.assert_allclose(pub.parameter_values.as_array([theta]), values)


def test_estimator_params_are_what_the_client_sends() -> None:
    measured = bell()
    unmeasured = measured.remove_final_measurements(inplace=False)

    ours = estimator_params(measured, ["ZZ", "XX"], precision=0.01)
    theirs = client_params(EstimatorV2, [(unmeasured, ["ZZ", "XX"])], precision=0.01)

    assert ours == theirs
    (pub,) = decode_pubs("estimator", ours)
    assert isinstance(pub, EstimatorPub)
    assert pub.circuit == bell(measure=False)
    assert pub.precision == 0.01
    assert [dict(observable) for observable in pub.observables] == [{"ZZ": 1}, {"XX": 1}]


def test_estimator_params_refuse_an_observable_of_the_wrong_width() -> None:
    with pytest.raises(CircuitError, match="number of qubits"):
        estimator_params(bell(), ["ZZZ"])


def test_sampler_params_refuse_unbound_parameters() -> None:
    circuit = QuantumCircuit(1)
    circuit.rx(Parameter("theta"), 0)
    circuit.measure_all()

    with pytest.raises(CircuitError, match="number of parameters"):
        sampler_params([circuit])


def test_params_round_trip_through_the_decoder() -> None:
    params = sampler_params([bell()], shots=100)

    decoded = json.loads(json.dumps(params), cls=RuntimeDecoder)

    assert decoded["pubs"][0][0] == bell()
    assert decoded["pubs"][0][2] == 100


# --- decoding and checking pubs ----------------------------------------------


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


# --- limits -------------------------------------------------------------------

SMALL = Limits(qubits=10, clbits=20, shots=5000, pubs=3, parameter_sets=4, observables=2, gates=50)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("OPENQASM 2.0;\nqreg q[10000000];", "declares 10000000 qubits; at most 10", 2),
        ("OPENQASM 2.0;\nqreg q[100000000000000000000000000000];", "declares 1000000", 2),
        ("OPENQASM 2.0;\nqreg a[6];\nqreg b[5];", "declares 11 qubits", 3),
        ("OPENQASM 2.0;\ncreg c[21];", "declares 21 bits; at most 20", 2),
        ("OPENQASM 3.0;\nqubit[11] q;", "declares 11 qubits", 2),
        ("OPENQASM 3.0;\n/* a\ncomment */ bit[30] c;", "declares 30 bits", 3),
        ("OPENQASM 3.0;\n" + "qubit q;\n" * 11, "declares 11 qubits", 12),
    ],
)
def test_declared_registers_are_refused_before_parsing(text: str, message: str, line: int) -> None:
    with pytest.raises(CircuitError, match=message) as caught:
        check_declarations(text, qubits=10, clbits=20, chars=1000)
    assert caught.value.line == line


def test_declarations_in_comments_and_within_limits_pass() -> None:
    text = "OPENQASM 2.0;\n// qreg q[999999];\n/* creg c[999999]; */\nqreg q[10];\ncreg c[20];"
    check_declarations(text, qubits=10, clbits=20, chars=1000)


def test_a_long_program_is_refused() -> None:
    with pytest.raises(CircuitError, match="1001 characters; at most 1000"):
        check_declarations("x" * 1001, qubits=10, clbits=20, chars=1000)


def test_qasm_params_checks_the_backend_width_first() -> None:
    with pytest.raises(CircuitError, match="declares 5 qubits; at most 2"):
        qasm_params(
            "sampler",
            EXAMPLES["ghz"],
            shots=None,
            precision=None,
            observables="",
            backend_qubits=2,
            limits=Limits(),
        )


def test_qasm_params_names_the_observables_field() -> None:
    with pytest.raises(CircuitError) as caught:
        qasm_params(
            "estimator",
            EXAMPLES["bell"],
            shots=None,
            precision=None,
            observables="ZZZ",
            backend_qubits=5,
            limits=Limits(),
        )
    assert caught.value.field == "observables"


def test_too_many_gates_are_refused() -> None:
    circuit = QuantumCircuit(1, 1)
    for _ in range(50):
        circuit.x(0)
    circuit.measure(0, 0)
    with pytest.raises(CircuitError, match="51 instructions; at most 50"):
        inspect("sampler", sampler_params([circuit]), SMALL)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["pubs"].extend(p["pubs"][:1] * 3), "4 PUBs; at most 3"),
        (lambda p: p["pubs"][0].__setitem__(2, 5001), "pub 0 has 5001 shots; at most 5000"),
        (lambda p: p["pubs"][0].__setitem__(2, 10**30), "has 10{30} shots"),
        (lambda p: p["pubs"][0].__setitem__(2, 1e30), "shots must be an integer"),
        (lambda p: p["options"].update(default_shots=6000) or p["pubs"][0].pop(), "has 6000 shots"),
    ],
)
def test_sampler_limits(change: Any, message: str) -> None:
    params = sampler_params([bell()], shots=10)
    change(params)
    with pytest.raises(CircuitError, match=message):
        inspect("sampler", params, SMALL)


def test_the_default_shots_count_against_the_limit() -> None:
    params = sampler_params([bell()])  # no shots of its own: the default 4000
    inspect("sampler", params, SMALL)
    with pytest.raises(CircuitError, match="pub 0 has 4000 shots; at most 3000"):
        inspect("sampler", params, Limits(shots=3000))


def test_parameter_sets_and_observables_are_limited() -> None:
    theta = Parameter("theta")
    rotated = QuantumCircuit(1)
    rotated.rx(theta, 0)
    rotated.measure_all()
    pubs = [SamplerPub.coerce((rotated, [[0.1]] * 5))]
    five = {"pubs": json.loads(json.dumps(pubs, cls=RuntimeEncoder)), "options": {}}
    with pytest.raises(CircuitError, match="5 parameter value sets; at most 4"):
        inspect("sampler", five, SMALL)
    with pytest.raises(CircuitError, match="3 observables; at most 2"):
        inspect("estimator", estimator_params(bell(), ["ZZ", "XX", "YY"]), SMALL)


def test_executions_are_limited() -> None:
    tight = Limits(executions=1000, shots=1000)
    with pytest.raises(CircuitError, match="4096 executions"):
        inspect("estimator", estimator_params(bell(), ["ZZ"]), tight)
    assert inspect("sampler", sampler_params([bell()], shots=1000), tight).executions == 1000

"""The job page's results and their downloads: sampler counts and bitstrings, estimator
expectation values, the executor program's items, and results that cannot be read."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import reduce
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder
from qiskit_ibm_runtime.decoders.defaults import DEFAULT_DECODERS

from scheduler import circuits, executor, models
from scheduler.engine import eager
from tests import executor_results
from tests.circuits.helpers import bell
from tests.factories import UserFactory, submit_at, two_hubs

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client: Client) -> Client:
    two_hubs()
    user = UserFactory(username="alice")
    models.Instance.objects.get(path="hubA/g/p").members.add(user)
    client.force_login(user)
    return client


def completed(uid: str, *, program_id: str, params: dict[str, Any], result: Any) -> str:
    """A job of hubA that ran and completed with `result`."""
    submit_at(uid, inst="hubA/g/p", at=timezone.now() - timedelta(seconds=10), seconds=1)
    eager.step([], at=timezone.now())
    models.Job.objects.filter(uid=uid).update(program_id=program_id, params=params, result=result)
    assert models.Job.objects.get(uid=uid).status == models.Job.Status.COMPLETED
    return uid


def two_registers() -> QuantumCircuit:
    """A Bell pair read into `left`, and a qubit in |1> read into `right`."""
    circuit = QuantumCircuit(
        QuantumRegister(3, "q"), ClassicalRegister(2, "left"), ClassicalRegister(1, "right")
    )
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.x(2)
    circuit.measure([0, 1, 2], [0, 1, 2])
    return circuit


def test_it_shows_sampler_counts_per_register_and_downloads_the_bitstrings(
    alice: Client,
) -> None:
    params = circuits.sampler_params([two_registers()], 200)
    uid = completed("qsamp", program_id="sampler", params=params, result=None)
    models.Job.objects.filter(uid=uid).update(result=executor.execute("sampler", params))

    page = alice.get(f"/jobs/{uid}").content.decode()
    assert "register <code>left</code>: 200 shots of 2 bits" in page
    assert "register <code>right</code>: 200 shots of 1 bit" in page
    assert "<td><code>1</code></td><td>200</td>" in page  # `right` always reads 1
    assert f'href="/jobs/{uid}/bitstrings.json"' in page
    assert f'href="/jobs/{uid}/result.json"' in page

    response = alice.get(f"/jobs/{uid}/bitstrings.json")
    assert response.status_code == 200
    assert f'filename="qdash-{uid}-bitstrings.json"' in response["Content-Disposition"]
    data = json.loads(response.content)
    registers = data["pubs"][0]["registers"]
    assert data["job"] == uid and set(registers) == {"left", "right"}
    left = registers["left"]
    assert (left["num_bits"], left["num_shots"], left["shape"]) == (2, 200, [])
    assert len(left["bitstrings"]) == 200 and set(left["bitstrings"]) == {"00", "11"}
    assert 60 < left["bitstrings"].count("11") < 140
    assert registers["right"]["bitstrings"] == ["1"] * 200


def test_the_result_download_is_the_clients_own_json(alice: Client) -> None:
    params = circuits.sampler_params([bell()], 50)
    result = executor.execute("sampler", params)
    uid = completed("qraw", program_id="sampler", params=params, result=result)

    response = alice.get(f"/jobs/{uid}/result.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert f'filename="qdash-{uid}-result.json"' in response["Content-Disposition"]
    assert response.content.decode() == result
    decoded = json.loads(response.content, cls=RuntimeDecoder)
    assert decoded[0].data.meas.num_shots == 50


def test_it_shows_expectation_values_with_standard_errors_per_observable(
    alice: Client,
) -> None:
    params = circuits.estimator_params(bell(measure=False), ["ZZ", "XX", "ZI"], 0.01)
    result = executor.execute("estimator", params)
    uid = completed("qest", program_id="estimator", params=params, result=result)

    page = alice.get(f"/jobs/{uid}").content.decode()
    rows = {
        label: page.split(f"<td><code>{label}</code></td><td>")[1].split("</td>")[0]
        for label in ("ZZ", "XX", "ZI")
    }
    assert abs(float(rows["ZZ"]) - 1) < 0.05 and abs(float(rows["XX"]) - 1) < 0.05
    assert abs(float(rows["ZI"])) < 0.05
    assert page.count("<td>± 0.01") == 3  # the standard error the precision asked for
    assert "bitstrings.json" not in page
    assert alice.get(f"/jobs/{uid}/bitstrings.json").status_code == 404


def test_an_executor_sampler_result_shows_as_the_clients_sampler_decodes_it(
    alice: Client,
) -> None:
    result = executor_results.sampler_result([bell()], 400)
    uid = completed("qexs", program_id="executor", params={}, result=result)

    page = alice.get(f"/jobs/{uid}").content.decode()
    assert "ran the client's Sampler" in page
    assert "register <code>meas</code>: 400 shots of 2 bits" in page
    assert "ExecutorResultDecoder" in page
    data = alice.get(f"/jobs/{uid}/bitstrings.json").json()
    assert set(data["pubs"][0]["registers"]["meas"]["bitstrings"]) == {"00", "11"}
    raw = alice.get(f"/jobs/{uid}/result.json").content.decode()
    decoded = reduce(
        lambda r, d: d.decode(r) if d.is_applicable(r) else r, DEFAULT_DECODERS["executor"], raw
    )
    assert decoded[0].data.meas.num_shots == 400


def test_an_executor_estimator_result_shows_its_expectation_values(alice: Client) -> None:
    observables = [SparsePauliOp("ZZ"), SparsePauliOp("XX"), SparsePauliOp("ZI")]
    result = executor_results.estimator_result([(bell(measure=False), observables)], 0.02)
    uid = completed("qexe", program_id="executor", params={}, result=result)

    page = alice.get(f"/jobs/{uid}").content.decode()
    assert "ran the client's Estimator" in page
    rows = re.findall(r"<td><code>(\w+)</code></td><td>(-?[\d.]+)</td><td>± ", page)
    values = {label: float(value) for label, value in rows}
    assert set(values) == {"ZZ", "XX", "ZI"}  # labelled from what the Estimator passed through
    assert abs(values["ZZ"] - 1) < 0.1 and abs(values["XX"] - 1) < 0.1
    assert abs(values["ZI"]) < 0.2


def test_an_executor_programs_items_are_summarised(alice: Client) -> None:
    program = executor_results.circuit_program(bell(), 300)
    program.append_circuit_item(two_registers())
    result = executor_results.program_result(program)
    uid = completed("qexp", program_id="executor", params={}, result=result)

    page = alice.get(f"/jobs/{uid}").content.decode()
    assert "<td><code>meas</code></td><td>300 × 2</td><td>bool</td>" in page
    assert "300 bitstrings of 2 bits; most frequent" in page
    assert "<td><code>right</code></td><td>300 × 1</td>" in page
    assert "300 bitstrings of 1 bit; most frequent 1 (300)" in page
    response = alice.get(f"/jobs/{uid}/bitstrings.json")
    assert response.status_code == 404 and response.json()["code"] == "no_bitstrings"


@pytest.mark.parametrize(
    ("program_id", "result"),
    [
        ("executor", "not json"),
        ("executor", json.dumps({"schema_version": "v9.9", "data": []})),
        ("executor", json.dumps({"__type__": "PrimitiveResult", "__value__": 3})),
        ("sampler", "{truncated"),
        ("sampler", json.dumps({"__type__": "ndarray", "__value__": "bm90IG51bXB5"})),
        ("estimator", json.dumps([1, 2])),
    ],
)
def test_a_result_that_does_not_decode_shows_a_message(
    alice: Client, program_id: str, result: str
) -> None:
    uid = completed("qbad", program_id=program_id, params={}, result=result)

    response = alice.get(f"/jobs/{uid}")
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        f"does not decode as the client decodes results of the {program_id} program" in page
        or "has a form this page cannot show" in page
    )
    assert 'role="alert"' in page and 'id="result-chart"' not in page
    bits = alice.get(f"/jobs/{uid}/bitstrings.json")
    assert bits.status_code in (404, 409)
    assert bits.json()["code"] in ("unreadable_result", "no_bitstrings")
    assert alice.get(f"/jobs/{uid}/result.json").content.decode() == result


def test_a_job_without_a_result_has_nothing_to_download(alice: Client) -> None:
    submit_at("qwait", inst="hubA/g/p", at=timezone.now(), seconds=600)
    submit_at("qwait2", inst="hubA/g/p", at=timezone.now(), seconds=600)

    for name in ("result", "bitstrings"):
        response = alice.get(f"/jobs/qwait2/{name}.json")
        assert response.status_code == 409 and response.json()["code"] == "no_result"
    assert 'id="job-results" hidden' in alice.get("/jobs/qwait2").content.decode()


def test_downloads_follow_the_job_pages_access(client: Client, alice: Client) -> None:
    params = circuits.sampler_params([bell()], 20)
    uid = completed("qmine", program_id="sampler", params=params, result=None)
    models.Job.objects.filter(uid=uid).update(result=executor.execute("sampler", params))
    stranger = Client()
    user = UserFactory(username="bob")
    models.Instance.objects.get(path="hubB/g/p").members.add(user)
    stranger.force_login(user)

    for name in ("result", "bitstrings"):
        assert alice.get(f"/jobs/{uid}/{name}.json").status_code == 200
        assert stranger.get(f"/jobs/{uid}/{name}.json").status_code == 404
        assert Client().get(f"/jobs/{uid}/{name}.json").status_code == 302
        assert alice.post(f"/jobs/{uid}/{name}.json").status_code == 405


def test_bitstrings_too_large_to_download_are_refused(
    alice: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.selectors import results

    params = circuits.sampler_params([bell()], 1000)
    uid = completed("qbig", program_id="sampler", params=params, result=None)
    models.Job.objects.filter(uid=uid).update(result=executor.execute("sampler", params))
    monkeypatch.setattr(results, "BITSTRINGS_MAX_BYTES", 1000)

    response = alice.get(f"/jobs/{uid}/bitstrings.json")
    assert response.status_code == 413 and "download the result JSON" in response.json()["message"]


def test_expectation_values_of_a_parameter_sweep_keep_their_observables(alice: Client) -> None:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    sweep = [[0.0], [np.pi / 2], [np.pi]]
    pub = EstimatorPub.coerce((circuit, [["Z"], ["X"]], sweep), 0.01)
    params = json.loads(json.dumps({"pubs": [pub], "version": 2}, cls=RuntimeEncoder))
    result = executor.execute("estimator", params)
    uid = completed("qsweep", program_id="estimator", params=params, result=result)

    page = alice.get(f"/jobs/{uid}").content.decode()
    rows = re.findall(
        r"<tr><td>0</td><td>(\d, \d)</td><td><code>(\w)</code></td><td>(-?[\d.]+)</td>", page
    )
    values = {(index, label): float(value) for index, label, value in rows}
    assert set(values) == {(f"{o}, {p}", "ZX"[o]) for o in (0, 1) for p in (0, 1, 2)}
    expected = {"0, 0": 1, "0, 1": 0, "0, 2": -1, "1, 0": 0, "1, 1": 1, "1, 2": 0}
    for (index, _), value in values.items():
        assert abs(value - expected[index]) < 0.05, index

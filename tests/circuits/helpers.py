"""What the circuit tests share: a Bell pair and the params the real client posts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from qiskit import QuantumCircuit
from qiskit_ibm_runtime import Session
from qiskit_ibm_runtime.api.rest.runtime import Runtime

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

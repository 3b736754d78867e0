"""Hostile programs for the fuzz run: short jobs that would run forever, or expand to
gigabytes, if their size were read as written.

Each shape is built the way a client would build it (Qiskit circuits, the client's
wire encoding), then sent as alice to `POST /jobs` of the served demo, whose
execution caps are lowered for the run (`CAPS`). A job is either refused (a 4xx,
nothing stored) or accepted and run under the caps; the run then reads the
executions ledger of the server's database: an execution that lasted longer than
its wall-clock cap (plus `GRACE_SECONDS` for killing and reporting) is an execution
past its cap. `/healthz` is timed throughout.
"""

from __future__ import annotations

import base64
import json
import random
import re
import sqlite3
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CAPS = {"QDASH_EXECUTION_SECONDS": "5", "QDASH_EXECUTOR_MEMORY_MB": "512"}
BACKEND = "fuzz_wide"  # an ideal 127-qubit backend the run adds, so width refuses nothing
ADD_BACKEND = f"""
from datetime import timedelta
from scheduler import models, services
backend = models.Backend.objects.create(
    name="{BACKEND}", num_qubits=127, job_overhead=timedelta(seconds=0.1),
    shot_time=timedelta(microseconds=10),
)
services.backends_changed(backend=backend)
"""
GRACE_SECONDS = 3.0  # a killed execution is reported and its ledger row ended within this
SETTLE_SECONDS = 240.0  # how long the run waits for the accepted jobs to end


@dataclass
class ShapeTally:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    final: Counter[str] = field(default_factory=Counter)  # accepted jobs: status or error


@dataclass
class HostileResult:
    shapes: dict[str, ShapeTally] = field(default_factory=dict)
    executions: int = 0
    past_cap: list[str] = field(default_factory=list)  # job ids
    longest: float = 0.0  # seconds, the longest execution
    healthz: list[float] = field(default_factory=list)  # seconds per probe
    unsettled: int = 0  # accepted jobs still queued or running at the end


# ------------------------------------------------------------------ shapes
def _x_loop(iterations: int, body: int) -> Any:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2, 2)
    with circuit.for_loop(range(iterations)):
        for _ in range(body):
            circuit.x(0)
    circuit.measure([0, 1], [0, 1])
    return circuit


def loops(rng: random.Random) -> dict[str, Any]:
    iterations = rng.choice([2, 100, 10_000, 99_999, 10**6, 10**12, 10**18])
    return _sampler([_x_loop(iterations, rng.randint(1, 5))])


def nested_loops(rng: random.Random) -> dict[str, Any]:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2, 2)
    levels = [rng.choice([2, 10, 300, 10**4, 10**9]) for _ in range(rng.randint(2, 4))]
    stack = [circuit.for_loop(range(n)) for n in levels]
    for context in stack:
        context.__enter__()
    circuit.cx(0, 1)
    for context in reversed(stack):
        context.__exit__(None, None, None)
    circuit.measure([0, 1], [0, 1])
    return _sampler([circuit])


def while_loops(rng: random.Random) -> dict[str, Any]:
    from qiskit import QuantumCircuit
    from qiskit.circuit.classical import expr

    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    outer = circuit.for_loop(range(rng.choice([1, 3]))) if rng.random() < 0.5 else None
    if outer is not None:
        outer.__enter__()
    with circuit.while_loop(expr.logic_not(circuit.clbits[0])):
        circuit.x(0)
        circuit.x(0)
        circuit.measure(0, 0)
    if outer is not None:
        outer.__exit__(None, None, None)
    return _sampler([circuit])


def huge_observables(rng: random.Random) -> dict[str, Any]:
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

    qubits = rng.choice([10, 40])
    terms = rng.choice([10, 1_000, 60_000, 200_000])
    circuit = QuantumCircuit(qubits)
    circuit.h(0)
    labels = {"".join(rng.choice("IXYZ") for _ in range(qubits)) for _ in range(terms)}
    observable = SparsePauliOp(sorted(labels))
    from qiskit.primitives.containers import EstimatorPub

    return _encode("estimator", [EstimatorPub.coerce((circuit, observable))])


def huge_bindings(rng: random.Random) -> dict[str, Any]:
    """A parameter-value array as the client encodes it, claiming up to 10^9 floats: most
    are zeros, so its compressed payload stays a few hundred kilobytes."""
    import io

    import numpy as np
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.measure_all()
    from qiskit.primitives.containers import SamplerPub

    params = _encode("sampler", [SamplerPub.coerce((circuit, [[0.1]], 10))])
    rows = rng.choice([10, 10_001, 10**6, 10**8])
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((min(rows, 10**6), 1)))
    payload = buffer.getvalue()
    if rows > 10**6:  # claim more rows than are there: the header says so
        payload = payload.replace(b"(1000000, 1)", f"({rows}, 1)".encode().ljust(12), 1)
    encoded = base64.b64encode(zlib.compress(payload, 9)).decode()
    params["pubs"][0][1] = {"__type__": "ndarray", "__value__": encoded}
    return params


def samplex_items(rng: random.Random) -> dict[str, Any]:
    from qiskit import QuantumCircuit
    from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.executor_sampler import Sampler
    from qiskit_ibm_runtime.executor_sampler.prepare import prepare

    from tests.executor_results import program_params

    backend = AerSimulator()
    sampler: Any = Sampler(mode=backend)
    sampler.options.twirling.enable_gates = True
    sampler.options.twirling.num_randomizations = rng.choice([2, 100, 10_001, 10**6])
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    isa = generate_preset_pass_manager(backend=backend, optimization_level=1).run(circuit)
    program, _ = prepare([isa], sampler.options, rng.choice([10, 1000]), backend=backend)
    program._semantic_role = "sampler_v2"
    params = program_params(program)
    if rng.random() < 0.3:  # one number of the program, the samplex's included, made huge
        text = json.dumps(params)
        numbers = list(re.finditer(r"(?<![\w.])\d+(?![\w.])", text))
        if numbers:
            hit = rng.choice(numbers)
            text = text[: hit.start()] + "999999999999" + text[hit.end() :]
        params = json.loads(text)
    return {"program_id": "executor", **params}


def huge_qpy_headers(rng: random.Random) -> dict[str, Any]:
    """A valid circuit's QPY with one of its header's sizes (qubits, clbits, instructions,
    a name's length) replaced by a huge number."""
    from scheduler import circuits

    params = circuits.sampler_params([circuits.ghz(3)], 10)
    blob = params["pubs"][0][0]
    qpy = bytearray(zlib.decompress(base64.b64decode(blob["__value__"])))
    if rng.random() < 0.5:
        qubits_clbits = (3).to_bytes(4, "big") * 2  # num_qubits, num_clbits, side by side
        at = qpy.find(qubits_clbits)
        huge = rng.choice([2**31 - 1, 2**32 - 1, 10**9]).to_bytes(4, "big")
        if at >= 0:
            qpy[at + rng.choice([0, 4]) : at + rng.choice([0, 4]) + 4] = huge
    else:
        at = rng.randrange(6, min(len(qpy) - 8, 96))
        qpy[at : at + 8] = rng.choice([b"\xff" * 8, b"\x7f" + b"\xff" * 7, b"\x00\x00\xff\xff" * 2])
    blob["__value__"] = base64.b64encode(zlib.compress(bytes(qpy))).decode()
    return {"program_id": "sampler", **params}


def long_runs(rng: random.Random) -> dict[str, Any]:
    """Within every input limit, but minutes of simulation: the wall-clock cap stops it."""
    from qiskit import QuantumCircuit

    qubits = rng.choice([22, 23, 24])
    circuit = QuantumCircuit(qubits)
    for layer in range(rng.choice([200, 400])):  # entangled, so Aer cannot fuse it away
        for qubit in range(qubits):
            circuit.ry(0.1 + layer + qubit, qubit)
        for qubit in range(layer % 2, qubits - 1, 2):
            circuit.cz(qubit, qubit + 1)
    circuit.measure_all()
    return _sampler([circuit])


def _sampler(circuits_: list[Any]) -> dict[str, Any]:
    from qiskit.primitives.containers import SamplerPub

    return _encode("sampler", [SamplerPub.coerce(circuit, 10) for circuit in circuits_])


def _encode(program_id: str, pubs: list[Any]) -> dict[str, Any]:
    """The body's program and params as the client's primitives send them."""
    from qiskit_ibm_runtime import RuntimeEncoder

    params = {"pubs": pubs, "options": {}, "version": 2, "support_qiskit": True}
    return {"program_id": program_id, **json.loads(json.dumps(params, cls=RuntimeEncoder))}


SHAPES: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "for loops": loops,
    "nested for loops": nested_loops,
    "while loops": while_loops,
    "huge observables": huge_observables,
    "huge parameter bindings": huge_bindings,
    "samplex items": samplex_items,
    "QPY headers claiming huge sizes": huge_qpy_headers,
    "long runs within the limits": long_runs,
}


def bodies(per_shape: int, seed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    for shape, build in SHAPES.items():
        for _ in range(per_shape):
            params = build(rng)
            program_id = params.pop("program_id", "executor")
            yield shape, {"program_id": program_id, "backend": BACKEND, "params": params}


# ------------------------------------------------------------------ the run
def run(base: str, headers: dict[str, str], database: Path, per_shape: int, seed: int) -> Any:
    """Send the hostile jobs, wait for the accepted ones to end, and read the ledger."""
    import requests

    result = HostileResult()
    probing = threading.Event()
    probe = threading.Thread(target=_probe_healthz, args=(base, probing, result), daemon=True)
    probe.start()
    accepted: dict[str, str] = {}  # job id -> shape
    try:
        for shape, body in bodies(per_shape, seed):
            tally = result.shapes.setdefault(shape, ShapeTally())
            tally.sent += 1
            response = requests.post(f"{base}/api/v1/jobs", json=body, headers=headers, timeout=120)
            tally.statuses[response.status_code] += 1
            if response.status_code == 201:
                accepted[response.json()["id"]] = shape
        result.unsettled = _settle(base, headers, accepted, result)
    finally:
        probing.set()
        probe.join(10)
    _read_ledger(database, result)
    return result


def _settle(base: str, headers: dict[str, str], accepted: dict[str, str], result: Any) -> int:
    import requests

    waiting = dict(accepted)
    deadline = time.monotonic() + SETTLE_SECONDS
    while waiting and time.monotonic() < deadline:
        for job, shape in list(waiting.items()):
            answer = requests.get(f"{base}/api/v1/jobs/{job}", headers=headers, timeout=60).json()
            status = answer.get("status", "?")
            if status not in ("Queued", "Running"):
                reason = str((answer.get("state") or {}).get("reason") or "")
                capped = " at a cap" if "limit exceeded" in reason.lower() else ""
                result.shapes[shape].final[status + capped] += 1
                del waiting[job]
        time.sleep(1)
    return len(waiting)


def _probe_healthz(base: str, stop: threading.Event, result: Any) -> None:
    import requests

    while not stop.is_set():
        started = time.monotonic()
        try:
            requests.get(f"{base}/healthz", timeout=30)
        except requests.RequestException:
            result.healthz.append(30.0)
        else:
            result.healthz.append(time.monotonic() - started)
        stop.wait(0.5)


def _read_ledger(database: Path, result: Any) -> None:
    cap = float(CAPS["QDASH_EXECUTION_SECONDS"])
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT j.uid, e.started_at, e.ended_at FROM scheduler_execution e "
            "JOIN scheduler_job j ON j.id = e.job_id"
        ).fetchall()
    from datetime import datetime

    for uid, started, ended in rows:
        result.executions += 1
        if ended is None:
            result.past_cap.append(f"{uid} (never ended)")
            continue
        seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
        result.longest = max(result.longest, seconds)
        if seconds > cap + GRACE_SECONDS:
            result.past_cap.append(f"{uid} ({seconds:.1f} s)")

"""`/backends`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.http import HttpRequest
from ninja import Router

from scheduler import models
from scheduler.api.errors import ApiError
from scheduler.api.schemas import (
    REFUSALS,
    BackendStatusOut,
    ConfigurationOut,
    DevicesOut,
)
from scheduler.devices import DeviceUnavailable, answers
from scheduler.devices.device import Device, device_of
from scheduler.limits import input_limits
from scheduler.policy import model as m
from scheduler.selectors.cards import latest_samples

BACKEND_VERSION = "1.0.0"
ONLINE_DATE = "2025-01-01T00:00:00Z"
# Gates the client may transpile to; all run on Aer. No coupling map: all-to-all.
GATES = [
    ("id", [], "gate id q { U(0,0,0) q; }"),
    ("rz", ["theta"], "gate rz(theta) q { U(0,0,theta) q; }"),
    ("sx", [], "gate sx q { U(pi/2,-pi/2,pi/2) q; }"),
    ("x", [], "gate x q { U(pi,0,pi) q; }"),
    ("cx", [], "gate cx q0,q1 { CX q0,q1; }"),
    ("ecr", [], "gate ecr q0,q1 { rzx(pi/4) q0,q1; x q0; rzx(-pi/4) q0,q1; }"),
]
BASIS_GATES = [name for name, _, _ in GATES] + ["measure", "reset"]

router = Router(tags=["backends"])


BACKEND_COLUMNS = [field.attname for field in models.Backend._meta.concrete_fields]
# Every submission and session reads its backend: a written-out statement, not a query
# the ORM builds per call.
BACKEND_SQL = "SELECT {} FROM {} WHERE name = %s".format(
    ", ".join(f'"{column}"' for column in BACKEND_COLUMNS), models.Backend._meta.db_table
)


def backend_or_404(name: str) -> models.Backend:
    # A raw query set converts the columns as the ORM does (durations on SQLite, JSON).
    backend = next(iter(models.Backend.objects.raw(BACKEND_SQL, [name])), None)
    if backend is None:
        raise ApiError(404, m.UNKNOWN_BACKEND, f"Unknown backend {name!r}.")
    return backend


@router.get("/backends", response={200: DevicesOut} | REFUSALS)
def backends_list(request: HttpRequest, include_mocks: bool = False) -> dict[str, Any]:
    """Every backend (all are simulated with Aer; none is a mock), with its queue length
    as the scheduler last wrote it."""
    samples = latest_samples()
    queued = {pk: s.reservation + s.session + s.fair_share for pk, s in samples.items()}
    return {
        "devices": [
            {
                "name": b.name,
                "num_qubits": b.num_qubits,
                # As IBM's list shows it; `service.least_busy()` reads status.name.
                "status": {"name": b.status, "reason": ""},
                "queue_length": queued.get(b.pk, 0),
                "physical_qubits": b.num_qubits,
                "description": b.description,
            }
            for b in models.Backend.objects.all()
        ]
    }


def _no_calibration(name: str, calibration_id: str | None) -> None:
    """qdash's backends have one, unnamed calibration: any other one is unknown."""
    if calibration_id is not None:
        raise ApiError(
            404, "unknown_calibration", f"Backend {name!r} has no calibration {calibration_id!r}."
        )


def _device(backend: models.Backend) -> Device | None:
    """The device behind `backend` (None: ideal); a 409 while it cannot be used."""
    device = device_of(backend)
    if device is not None and backend.offline_reason:
        raise ApiError(
            409, "backend_offline", f"{backend.name} is offline: {backend.offline_reason}"
        )
    return device


def _answer(make: Any) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = make()
    except DeviceUnavailable as error:
        raise ApiError(409, "backend_offline", str(error)) from None
    return answer


@router.get(
    "/backends/{name}/configuration",
    response={200: ConfigurationOut} | REFUSALS,
    exclude_unset=True,
)
def backends_configuration(
    request: HttpRequest, name: str, calibration_id: str | None = None
) -> dict[str, Any]:
    """A device's own configuration under this backend's name; for an ideal simulator, its
    gates with no coupling map (all-to-all)."""
    backend = backend_or_404(name)
    _no_calibration(name, calibration_id)
    limits = input_limits()
    device = _device(backend)
    if device is not None:
        return _answer(
            lambda: answers.configuration(
                device,
                name=backend.name,
                description=backend.description,
                max_shots=limits.shots,
                max_experiments=limits.pubs,
            )
        )
    return {
        "backend_name": backend.name,
        "backend_version": BACKEND_VERSION,
        "n_qubits": backend.num_qubits,
        "basis_gates": BASIS_GATES,
        "gates": [{"name": n, "parameters": p, "qasm_def": d} for n, p, d in GATES],
        "local": False,
        # The client skips sessions for simulators: qdash backends act as QPUs.
        "simulator": False,
        "conditional": False,
        "open_pulse": False,
        "memory": False,
        "coupling_map": None,
        "online_date": ONLINE_DATE,
        "max_shots": limits.shots,
        "max_experiments": limits.pubs,
        "description": backend.description,
    }


@router.get("/backends/{name}/properties", response={200: dict} | REFUSALS)
def backends_properties(
    request: HttpRequest,
    name: str,
    calibration_id: str | None = None,
    updated_before: datetime | None = None,
) -> dict[str, Any]:
    """A device's calibration (T1, T2, frequencies, readout and gate errors and lengths,
    with their dates); `{}` for a date before it (`updated_before`, which the client's
    `properties(datetime=...)` and `target_history()` send).

    An ideal simulator's: every qubit reads out without error, and no gate entries, so
    the client keeps every gate ideal on every pair of qubits (there is no coupling
    map). Coherence times are left out; they are infinite.
    """
    backend = backend_or_404(name)
    _no_calibration(name, calibration_id)
    device = _device(backend)
    if device is not None:
        return _answer(
            lambda: answers.properties(device, name=backend.name, updated_before=updated_before)
        )
    readout = [
        {"date": ONLINE_DATE, "name": prop, "unit": "", "value": 0.0}
        for prop in ("readout_error", "prob_meas0_prep1", "prob_meas1_prep0")
    ]
    return {
        "backend_name": backend.name,
        "backend_version": BACKEND_VERSION,
        "last_update_date": ONLINE_DATE,
        "qubits": [readout] * backend.num_qubits,
        "gates": [],
        "general": [],
    }


# The client polls it: one statement, written out so that no query is built per call.
_SAMPLES, _BACKENDS = models.QueueSample._meta.db_table, models.Backend._meta.db_table
STATUS_SQL = f"""
SELECT b.name, b.status,
       (SELECT s.reservation + s.session + s.fair_share FROM {_SAMPLES} s
         WHERE s.backend_id = b.id ORDER BY s.id DESC LIMIT 1)
  FROM {_BACKENDS} b WHERE b.name = %s
"""


@router.get("/backends/{name}/status", response={200: BackendStatusOut} | REFUSALS)
def backends_status(request: HttpRequest, name: str) -> dict[str, Any]:
    """The backend and its queue length as the scheduler last wrote it."""
    with connection.cursor() as cursor:
        cursor.execute(STATUS_SQL, [name])
        row = cursor.fetchone()
    if row is None:
        raise ApiError(404, m.UNKNOWN_BACKEND, f"Unknown backend {name!r}.")
    backend_name, status, queued = row
    online = status == models.Backend.Status.ONLINE
    return {
        "backend_name": backend_name,
        "state": online,
        "status": "active" if online else "paused",
        "message": "" if online else "Paused: jobs queue but do not start.",
        "length_queue": queued or 0,
        "backend_version": BACKEND_VERSION,
    }

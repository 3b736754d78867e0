"""`/backends` and `/instances/usage`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router

from scheduler import models
from scheduler.api.auth import instance_crn, principal
from scheduler.api.errors import ApiError
from scheduler.api.schemas import (
    REFUSALS,
    BackendStatusOut,
    ConfigurationOut,
    DevicesOut,
    UsageOut,
)
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


def backend_or_404(name: str) -> models.Backend:
    backend = models.Backend.objects.filter(name=name).first()
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


def _total(sample: models.QueueSample) -> int:
    return sample.reservation + sample.session + sample.fair_share


def _queued(backend: models.Backend) -> int:
    """The backend's queue length, as the scheduler last wrote it."""
    sample = latest_samples(backend_ids=[backend.pk]).get(backend.pk)
    return 0 if sample is None else _total(sample)


def _no_calibration(name: str, calibration_id: str | None) -> None:
    """qdash's backends have one, unnamed calibration: any other one is unknown."""
    if calibration_id is not None:
        raise ApiError(
            404, "unknown_calibration", f"Backend {name!r} has no calibration {calibration_id!r}."
        )


@router.get("/backends/{name}/configuration", response={200: ConfigurationOut} | REFUSALS)
def backends_configuration(
    request: HttpRequest, name: str, calibration_id: str | None = None
) -> dict[str, Any]:
    backend = backend_or_404(name)
    _no_calibration(name, calibration_id)
    limits = input_limits()
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
    request: HttpRequest, name: str, calibration_id: str | None = None
) -> dict[str, Any]:
    """The calibration of a noiseless simulator: every qubit reads out without error.

    Qubits only: with no gate entries the client keeps every gate ideal on every pair
    of qubits (there is no coupling map). Coherence times are left out; they are infinite.
    """
    backend = backend_or_404(name)
    _no_calibration(name, calibration_id)
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


@router.get("/backends/{name}/status", response={200: BackendStatusOut} | REFUSALS)
def backends_status(request: HttpRequest, name: str) -> dict[str, Any]:
    backend = backend_or_404(name)
    online = backend.status == models.Backend.Status.ONLINE
    return {
        "backend_name": backend.name,
        "state": online,
        "status": "active" if online else "paused",
        "message": "" if online else "Paused: jobs queue but do not start.",
        "length_queue": _queued(backend),
        "backend_version": BACKEND_VERSION,
    }


@router.get("/instances/usage", response={200: UsageOut} | REFUSALS)
def instances_usage(request: HttpRequest) -> dict[str, Any]:
    """Fair-share usage of the selected instance over the usage window."""
    node = principal(request).require_instance()
    window = int(settings.QDASH["USAGE_WINDOW"])
    used = models.UsageCharge.objects.filter(
        instance=node, ended_at__gt=timezone.now() - timedelta(seconds=window)
    ).aggregate(total=Sum("microseconds"))["total"]
    return {
        "instance": instance_crn(node.path),
        "usage_consumed_seconds": (used or 0) / 1e6,
        "usage_window_seconds": window,
        "share": node.share,
    }

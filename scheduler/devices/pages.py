"""What a backend's page shows: its device, coupling map, calibration, queue and timing."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import rustworkx as rx
from django.utils import timezone

from scheduler import models
from scheduler.devices import DeviceUnavailable
from scheduler.devices import device as devices
from scheduler.selectors.cards import latest_samples, sample_depths

LANE_NAMES = {"reservation": "reservation", "session": "session", "fair_share": "fair-share"}
# The qubit columns of the calibration table: (property, heading, scale, format).
QUBIT_COLUMNS = [
    ("T1", "T1 (µs)", 1.0, "{:.1f}"),
    ("T2", "T2 (µs)", 1.0, "{:.1f}"),
    ("frequency", "Frequency (GHz)", 1.0, "{:.4f}"),
    ("readout_error", "Readout error", 1.0, "{:.2e}"),
    ("readout_length", "Readout length (ns)", 1.0, "{:.0f}"),
]


@dataclass
class Calibration:
    date: str
    columns: list[str]
    qubits: list[list[str]]  # one row per qubit: its number, then QUBIT_COLUMNS
    medians: list[tuple[str, str]]  # (what, value)
    chart: dict[str, Any]  # the coupling map's data, for static/js/backend.js
    gates: list[str] = field(default_factory=list)  # the device's basis gates


def backend_context(backend: models.Backend) -> dict[str, Any]:
    """The backend page: its device and calibration, queue, running job and next window."""
    now = timezone.now()
    device = devices.device_of(backend)
    calibration, problem = None, backend.offline_reason
    if device is not None and not problem:
        try:
            calibration = calibration_of(device)
        except DeviceUnavailable as error:
            problem = str(error)
    depth = sample_depths(latest_samples(backend_ids=[backend.pk]).get(backend.pk))
    return {
        "backend": backend,
        "device": device,
        "problem": problem,
        "calibration": calibration,
        "lanes": [(lane, LANE_NAMES[lane], count) for lane, count in depth.items()],
        "queued": sum(depth.values()),
        "running": models.Job.objects.filter(backend=backend, status=models.Job.Status.RUNNING)
        .select_related("instance")
        .defer("params", "result")
        .first(),
        "reservation": models.Reservation.objects.filter(backend=backend, end__gt=now)
        .select_related("instance")
        .order_by("start")
        .first(),
        "now": now,
    }


def calibration_of(device: devices.Device) -> Calibration:
    conf = devices.configuration(device)
    props = devices.properties(device)
    values = [{item["name"]: item["value"] for item in qubit} for qubit in props["qubits"]]
    rows = [
        [str(index)]
        + [
            fmt.format(value[name] * scale) if value.get(name) is not None else "—"
            for name, _, scale, fmt in QUBIT_COLUMNS
        ]
        for index, value in enumerate(values)
    ]
    couplers = _couplers(props, set(conf.get("basis_gates") or []))
    return Calibration(
        date=str(props.get("last_update_date", "")),
        columns=["Qubit"] + [heading for _, heading, _, _ in QUBIT_COLUMNS],
        qubits=rows,
        medians=_medians(values, props, couplers),
        chart=_chart(conf, values, couplers),
        gates=list(conf.get("basis_gates") or []),
    )


def _couplers(
    props: dict[str, Any], basis: set[str]
) -> dict[tuple[int, int], tuple[str, float | None]]:
    """Every two-qubit basis gate's entry: (control, target) -> (gate, error). Fractional
    gates a device also reports (rzz) are not its couplers' gate."""
    found = {}
    for gate in props.get("gates", []):
        if len(gate.get("qubits", [])) != 2 or gate["gate"] not in basis:
            continue
        error = next((p["value"] for p in gate["parameters"] if p["name"] == "gate_error"), None)
        found[(gate["qubits"][0], gate["qubits"][1])] = (gate["gate"], error)
    return found


def _medians(
    values: list[dict[str, float]],
    props: dict[str, Any],
    couplers: dict[tuple[int, int], tuple[str, float | None]],
) -> list[tuple[str, str]]:
    def median(numbers: list[float | None], fmt: str) -> str:
        present = [n for n in numbers if n is not None]
        return fmt.format(statistics.median(present)) if present else "—"

    single: dict[str, list[float | None]] = {}
    for gate in props.get("gates", []):
        if len(gate.get("qubits", [])) == 1 and gate["gate"] in ("sx", "x"):
            error = next(
                (p["value"] for p in gate["parameters"] if p["name"] == "gate_error"), None
            )
            single.setdefault(gate["gate"], []).append(error)
    two = sorted({name for name, _ in couplers.values()})
    return [
        ("readout error", median([v.get("readout_error") for v in values], "{:.2e}")),
        *[(f"{name} error", median(errors, "{:.2e}")) for name, errors in sorted(single.items())],
        (
            f"{'/'.join(two) or 'two-qubit'} error",
            median([error for _, error in couplers.values()], "{:.2e}"),
        ),
        ("T1", median([v.get("T1") for v in values], "{:.0f} µs")),
        ("T2", median([v.get("T2") for v in values], "{:.0f} µs")),
    ]


def _chart(
    conf: dict[str, Any],
    values: list[dict[str, float]],
    couplers: dict[tuple[int, int], tuple[str, float | None]],
) -> dict[str, Any]:
    n = int(conf["n_qubits"])
    pairs = {tuple(pair) for pair in conf.get("coupling_map") or []} | set(couplers)
    edges: dict[tuple[int, int], dict[str, Any]] = {}
    for a, b in sorted(pairs):
        key = (min(a, b), max(a, b))
        gate, error = couplers.get((a, b), ("", None))
        entry = edges.setdefault(key, {"a": key[0], "b": key[1], "error": None, "labels": []})
        entry["labels"].append(f"{gate or 'coupler'} {a}→{b}")
        if error is not None and (entry["error"] is None or error < entry["error"]):
            entry["error"] = error
    x, y = _positions(conf, n, list(edges))
    return {
        "x": x,
        "y": y,
        "readout_error": [v.get("readout_error") for v in values],
        "t1": [v.get("T1") for v in values],
        "t2": [v.get("T2") for v in values],
        "edges": list(edges.values()),
    }


def _positions(
    conf: dict[str, Any], n: int, edges: list[tuple[int, int]]
) -> tuple[list[float], list[float]]:
    coords = conf.get("coords")
    if isinstance(coords, list) and len(coords) == n:
        return [float(c[0]) for c in coords], [-float(c[1]) for c in coords]
    graph = rx.PyGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from_no_data(edges)
    layout = rx.spring_layout(graph, seed=7) if edges else rx.circular_layout(graph)
    return [float(layout[i][0]) for i in range(n)], [float(layout[i][1]) for i in range(n)]

"""Noisy execution on device profiles: executor time per job by active qubits.

`measure()` runs `python -m bench.devices` in a fresh interpreter (cold caches, as an
executor's child process starts), which times `scheduler.executor.execute` on ISA
circuits for the 127-qubit kyiv (ECR) and the 156-qubit fez (CZ): the first run
(the device's `Target` and the active set's noise are built) and the median of the
runs after it. The baseline, in the same run: `AerSimulator.from_backend(FakeKyiv())`
running the same circuit, which converts the whole device's noise model every run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import ROOT

SHOTS = 4000
REPS = 7
BELL_TARGET_MS = 50.0  # a transpiled Bell pair on 127 qubits, after the first run
GHZ20_FACTOR = 10.0  # a 20-qubit GHZ within this many times the Bell pair's time
BASELINE_MAX_QUBITS = 10  # past this from_backend runs every shot's statevector: minutes
# (device, circuit, width): GHZ circuits, one with a T gate (not Clifford: trajectories).
CASES = [
    ("kyiv", "ghz", 2),
    ("kyiv", "ghz", 5),
    ("kyiv", "ghz", 10),
    ("kyiv", "ghz", 14),
    ("kyiv", "ghz", 20),
    ("kyiv", "ghz+t", 12),
    ("fez", "ghz", 2),
    ("fez", "ghz", 20),
]
QUICK_CASES = [("kyiv", "ghz", 2), ("kyiv", "ghz", 20)]


@dataclass(frozen=True)
class Row:
    device: str
    circuit: str
    active: int
    method: str
    first_ms: float
    median_ms: float
    baseline_ms: float | None  # from_backend's run (its construction not counted)
    good: float  # share of shots reading all-0 or all-1


def measure(*, quick: bool = False) -> tuple[list[Row], float | None]:
    """The rows, and the time `from_backend` took to build its simulator (ms)."""
    with tempfile.TemporaryDirectory(prefix="qdash-bench-devices-") as workdir:
        result = Path(workdir) / "devices.json"
        args = [sys.executable, "-m", "bench.devices", "--result", str(result)]
        subprocess.run([*args, *(["--quick"] if quick else [])], cwd=ROOT, check=True)
        data = json.loads(result.read_text())
    return [Row(**row) for row in data["rows"]], data["baseline_build_ms"]


def table(rows: list[Row], baseline_build_ms: float | None) -> list[str]:
    """The report's section: the table, and verdicts against the targets."""
    lines = [
        "## Noisy execution on device profiles",
        "",
        f"Executor time per job (`scheduler.executor.execute`, {SHOTS} shots, decoding and "
        "encoding included) on ISA circuits, in a fresh interpreter: the first run builds the "
        f"device's Target and the active set's noise; later runs are the median of {REPS - 1}. "
        "Baseline: `AerSimulator.from_backend(FakeKyiv())` running the same circuit "
        f"(built once in {baseline_build_ms or 0:.0f} ms, not counted; past "
        f"{BASELINE_MAX_QUBITS} active qubits it simulates every shot's statevector, minutes "
        "a run, so it is not run there).",
        "",
        "| device | circuit | active qubits | method | first run | later runs | from_backend "
        "| speed-up | 0…0 or 1…1 |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        baseline = f"{row.baseline_ms:,.0f} ms" if row.baseline_ms is not None else "—"
        speedup = f"{row.baseline_ms / row.median_ms:,.0f}×" if row.baseline_ms is not None else "—"
        lines.append(
            f"| {row.device} | {row.circuit} | {row.active} | {row.method} | "
            f"{row.first_ms:,.0f} ms | {row.median_ms:,.1f} ms | {baseline} | {speedup} | "
            f"{row.good:.1%} |"
        )
    lines += ["", *verdicts(rows), ""]
    return lines


def verdicts(rows: list[Row]) -> list[str]:
    bell = next((r for r in rows if (r.device, r.active) == ("kyiv", 2)), None)
    ghz20 = next((r for r in rows if (r.device, r.circuit, r.active) == ("kyiv", "ghz", 20)), None)
    out = []
    if bell is not None:
        ok = "met" if bell.median_ms < BELL_TARGET_MS else "MISSED"
        out.append(
            f"- Bell pair on 127 qubits after the first run: {bell.median_ms:.1f} ms "
            f"(target < {BELL_TARGET_MS:.0f} ms: {ok})"
        )
    if bell is not None and ghz20 is not None:
        limit = GHZ20_FACTOR * bell.median_ms
        ok = "met" if ghz20.median_ms <= limit else "MISSED"
        out.append(
            f"- 20-qubit GHZ: {ghz20.median_ms:.1f} ms, {ghz20.median_ms / bell.median_ms:.1f}× "
            f"the Bell pair (target within {GHZ20_FACTOR:.0f}×: {ok})"
        )
    return out


# ---------------------------------------------------------------- the child process
def _circuits(device: str, name: str, width: int) -> Any:
    """The circuit transpiled for the client's fake backend (so qdash's caches stay cold)."""
    from qiskit import QuantumCircuit
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime.fake_provider import FakeFez, FakeKyiv

    circuit = QuantumCircuit(width)
    circuit.h(0)
    for q in range(1, width):
        circuit.cx(q - 1, q)
    if name == "ghz+t":
        circuit.t(width // 2)
    circuit.measure_all()
    fake = {"kyiv": FakeKyiv, "fez": FakeFez}[device]()
    manager = generate_preset_pass_manager(optimization_level=1, backend=fake, seed_transpiler=1)
    return manager.run(circuit)


def _child(result_path: Path, quick: bool) -> None:
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime import RuntimeDecoder
    from qiskit_ibm_runtime.fake_provider import FakeKyiv

    from scheduler import circuits
    from scheduler.devices.device import Device
    from scheduler.executor import execute

    cases = QUICK_CASES if quick else CASES
    isa = {case: _circuits(*case) for case in cases}  # transpiling is not the executor's time
    start = time.perf_counter()
    baseline = AerSimulator.from_backend(FakeKyiv())
    baseline_build_ms = (time.perf_counter() - start) * 1000
    rows = []
    for case in cases:
        device, name, width = case
        params = circuits.sampler_params([isa[case]], SHOTS)
        times = []
        for _ in range(REPS):
            start = time.perf_counter()
            text = execute("sampler", params, max_memory_mb=4096, device=Device(profile=device))
            times.append((time.perf_counter() - start) * 1000)
        (pub,) = json.loads(text, cls=RuntimeDecoder)
        counts = pub.data.meas.get_counts()
        good = (counts.get("0" * width, 0) + counts.get("1" * width, 0)) / SHOTS
        baseline_ms = None
        if device == "kyiv" and width <= BASELINE_MAX_QUBITS:
            start = time.perf_counter()
            baseline.run(isa[case], shots=SHOTS).result()
            baseline_ms = (time.perf_counter() - start) * 1000
        simulation = pub.metadata["simulation"]
        rows.append(
            Row(
                device=device,
                circuit=name,
                active=len(simulation["active_qubits"]),
                method=simulation["method"],
                first_ms=times[0],
                median_ms=statistics.median(times[1:]),
                baseline_ms=baseline_ms,
                good=good,
            ).__dict__
        )
        print(
            f"  devices: {device} {name} {width}: {statistics.median(times[1:]):.1f} ms", flush=True
        )
    result_path.write_text(json.dumps({"rows": rows, "baseline_build_ms": baseline_build_ms}))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.devices")
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    _child(args.result, args.quick)


if __name__ == "__main__":
    main()

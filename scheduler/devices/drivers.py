"""Drivers: any Qiskit `BackendV2` behind a qdash backend.

The operator names a class by its dotted path (`package.module.Class`) and its
keyword arguments as JSON. qdash derives the backend's configuration and
calibration from the instance's `Target`, checks circuits against it, and runs
jobs through it (`BackendSamplerV2` / `BackendEstimatorV2`). Pure: no Django.
"""

from __future__ import annotations

import functools
import importlib
import json
from datetime import UTC, datetime
from typing import Any

from qiskit.circuit import CONTROL_FLOW_OP_NAMES, Gate
from qiskit.providers import BackendV2
from qiskit.transpiler import Target

from scheduler.devices import DeviceUnavailable

NON_GATES = frozenset({"measure", "reset", "delay", "barrier", "store"}) | CONTROL_FLOW_OP_NAMES


class DriverError(DeviceUnavailable):
    """The driver could not be imported or instantiated; the message says why."""


def load_class(path: str) -> type[BackendV2]:
    """The `BackendV2` subclass at dotted `path`; raises `DriverError`."""
    module_name, _, class_name = path.strip().rpartition(".")
    if not module_name or not class_name:
        raise DriverError(f"{path!r} is not a dotted path such as package.module.Class.")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or whatever the module raises on import
        raise DriverError(f"cannot import {module_name}: {_one_line(error)}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise DriverError(f"{module_name} has no {class_name}.")
    if not (isinstance(cls, type) and issubclass(cls, BackendV2)):
        raise DriverError(f"{path} is not a Qiskit BackendV2 class.")
    return cls


def instantiate(path: str, args_json: str) -> BackendV2:
    """A new instance of the driver; raises `DriverError`."""
    cls = load_class(path)
    try:
        args = json.loads(args_json)
    except ValueError as error:
        raise DriverError(f"the driver's arguments are not JSON: {error}") from None
    if not isinstance(args, dict):
        raise DriverError("the driver's arguments must be a JSON object of keyword arguments.")
    try:
        backend = cls(**args)
        target = backend.target
    except Exception as error:  # the driver's own validation of its arguments
        raise DriverError(f"{path}({_args_text(args)}) failed: {_one_line(error)}") from None
    if not isinstance(target, Target) or target.num_qubits is None:
        raise DriverError(f"{path} has no Target with a number of qubits.")
    return backend


@functools.lru_cache(maxsize=16)
def backend(path: str, args_json: str) -> BackendV2:
    """The driver's instance, one per process for each path and arguments."""
    return instantiate(path, args_json)


@functools.lru_cache(maxsize=16)
def loaded_at(path: str, args_json: str) -> str:
    """When this process loaded the driver: the date of the calibration it reports."""
    backend(path, args_json)
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def configuration(driver: BackendV2) -> dict[str, Any]:
    """A configuration in the device format, derived from the driver's `Target`."""
    target = driver.target
    names = sorted(target.operation_names)
    gates = []
    for name in names:
        operation = target.operation_from_name(name)
        if name in NON_GATES or not isinstance(operation, Gate):
            continue
        qargs = target.qargs_for_operation_name(name)
        entry: dict[str, Any] = {
            "name": name,
            "parameters": [str(param) for param in operation.params],
            "qasm_def": "",
        }
        if qargs is not None:
            entry["coupling_map"] = sorted(list(q) for q in qargs)
        gates.append(entry)
    two_qubit = {tuple(q) for gate in gates for q in gate.get("coupling_map", []) if len(q) == 2}
    conf: dict[str, Any] = {
        "backend_name": driver.name,
        "backend_version": str(getattr(driver, "backend_version", None) or "1.0.0"),
        "n_qubits": target.num_qubits,
        "basis_gates": [gate["name"] for gate in gates],
        "gates": gates,
        "supported_instructions": names,
        "coupling_map": sorted(list(pair) for pair in two_qubit) or None,
        "local": False,
        "simulator": False,
        "conditional": False,
        "open_pulse": False,
        "memory": True,
        "description": driver.description or "",
        "online_date": "2025-01-01T00:00:00Z",
        "timing_constraints": {
            "granularity": target.granularity,
            "min_length": target.min_length,
            "pulse_alignment": target.pulse_alignment,
            "acquire_alignment": target.acquire_alignment,
        },
    }
    if target.dt:
        conf["dt"] = target.dt * 1e9  # nanoseconds, as devices report it
        conf["dtm"] = target.dt * 1e9
    return conf


def properties(driver: BackendV2, *, date: str) -> dict[str, Any]:
    """A calibration in the device format (units as devices report them), from the `Target`."""
    target = driver.target
    qubits = []
    measure = _by_qargs(target, "measure")
    for index in range(target.num_qubits):
        entry = []
        props = target.qubit_properties[index] if target.qubit_properties else None
        for name, unit, value, scale in (
            ("T1", "us", getattr(props, "t1", None), 1e6),
            ("T2", "us", getattr(props, "t2", None), 1e6),
            ("frequency", "GHz", getattr(props, "frequency", None), 1e-9),
        ):
            if value is not None:
                entry.append({"date": date, "name": name, "unit": unit, "value": value * scale})
        readout = measure.get((index,))
        if readout is not None and readout.error is not None:
            entry.append(
                {"date": date, "name": "readout_error", "unit": "", "value": readout.error}
            )
        if readout is not None and readout.duration is not None:
            entry.append(
                {
                    "date": date,
                    "name": "readout_length",
                    "unit": "ns",
                    "value": readout.duration * 1e9,
                }
            )
        qubits.append(entry)
    gates = []
    for name in sorted(target.operation_names):
        if name in NON_GATES - {"reset"}:  # measurements are the qubits' readout entries
            continue
        for qargs, props in sorted(_by_qargs(target, name).items()):
            if props is None:
                continue
            parameters = []
            if props.error is not None:
                parameters.append(
                    {"date": date, "name": "gate_error", "unit": "", "value": props.error}
                )
            if props.duration is not None:
                parameters.append(
                    {
                        "date": date,
                        "name": "gate_length",
                        "unit": "ns",
                        "value": props.duration * 1e9,
                    }
                )
            if parameters:
                label = name + "_".join(str(q) for q in qargs)
                gates.append(
                    {"qubits": list(qargs), "gate": name, "parameters": parameters, "name": label}
                )
    return {
        "backend_name": driver.name,
        "backend_version": str(getattr(driver, "backend_version", None) or "1.0.0"),
        "last_update_date": date,
        "qubits": qubits,
        "gates": gates,
        "general": [],
    }


def _by_qargs(target: Target, name: str) -> dict[tuple[int, ...], Any]:
    if name not in target.operation_names:
        return {}
    entries = target[name]
    return {qargs: props for qargs, props in entries.items() if qargs is not None}


def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in args.items())


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."

"""Device profiles: the devices `qiskit-ibm-runtime`'s fake provider ships.

Each is a folder of `qiskit_ibm_runtime.fake_provider.backends` holding
`conf_<name>.json` and `props_<name>.json`. They are read from the installed
package with `importlib.resources`, never copied: a newer client brings newer
calibrations. Pure: no Django.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from scheduler.devices import DeviceUnavailable

PACKAGE = "qiskit_ibm_runtime.fake_provider.backends"
# Pulse-level fields: qdash serves no pulse defaults (`open_pulse` is false), and they
# are most of a configuration's size.
PULSE_FIELDS = frozenset(
    {
        "channels",
        "hamiltonian",
        "u_channel_lo",
        "qubit_lo_range",
        "meas_lo_range",
        "qubit_channel_mapping",
        "n_uchannels",
        "uchannels_enabled",
        "parametric_pulses",
        "meas_kernels",
        "discriminators",
        "meas_levels",
        "rep_times",
        "url",
        "allow_q_object",
    }
)


class UnknownProfile(DeviceUnavailable):
    """No such device in the installed client's fake provider."""


@functools.cache
def names() -> tuple[str, ...]:
    """Every device profile the installed client ships, sorted."""
    root = resources.files(PACKAGE)
    found = [
        entry.name
        for entry in root.iterdir()
        if entry.is_dir()
        and (entry / f"conf_{entry.name}.json").is_file()
        and (entry / f"props_{entry.name}.json").is_file()
    ]
    return tuple(sorted(found))


def check(name: str) -> None:
    """Raise `UnknownProfile` unless `name` is a shipped profile."""
    if name not in names():
        raise UnknownProfile(
            f"{name!r} is not a device of the installed qiskit-ibm-runtime "
            f"(it ships {len(names())}, such as {', '.join(names()[:4])})."
        )


@functools.lru_cache(maxsize=16)
def _read(name: str, kind: str) -> dict[str, Any]:
    check(name)
    path = resources.files(PACKAGE) / name / f"{kind}_{name}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def configuration(name: str) -> dict[str, Any]:
    """The profile's configuration as the device reports it (a copy; pulse fields left out)."""
    return {
        key: copy.deepcopy(value)
        for key, value in _read(name, "conf").items()
        if key not in PULSE_FIELDS
    }


def properties(name: str) -> dict[str, Any]:
    """The profile's calibration (a copy): qubits, gates, and their dates."""
    return copy.deepcopy(_read(name, "props"))


def summary(name: str) -> str:
    """One line for the admin's list: qubits, processor and two-qubit gate."""
    conf = _read(name, "conf")
    processor = conf.get("processor_type") or {}
    family = " ".join(
        str(part) for part in (processor.get("family"), processor.get("revision")) if part
    )
    two_qubit = [
        gate["name"]
        for gate in conf.get("gates", [])
        if gate.get("coupling_map") and len(gate["coupling_map"][0]) == 2
    ]
    parts = [f"{conf['n_qubits']} qubits", family, ", ".join(sorted(set(two_qubit)))]
    return f"{name}: " + ", ".join(part for part in parts if part)

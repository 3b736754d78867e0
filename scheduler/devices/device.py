"""What stands behind a backend (`Device`), and its configuration, calibration and `Target`.

Pure: no Django. A `Device` is small and picklable, so it crosses into the decoding
sandbox and the executors' child processes, which build (and keep) the `Target`
themselves.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Protocol

from qiskit.transpiler import Target

from scheduler.devices import drivers, profiles


class BackendRow(Protocol):
    profile: str
    driver: str
    driver_args: Any


@dataclass(frozen=True)
class Device:
    """A device profile (`profile`) or a driver (`driver`, with JSON `args`)."""

    profile: str = ""
    driver: str = ""
    args: str = "{}"

    @property
    def label(self) -> str:
        return f"profile {self.profile}" if self.profile else f"driver {self.driver}"


def device_of(backend: BackendRow) -> Device | None:
    """The device behind a backend row; None for an ideal simulator."""
    if backend.profile:
        return Device(profile=backend.profile)
    if backend.driver:
        args = json.dumps(backend.driver_args or {}, sort_keys=True)
        return Device(driver=backend.driver, args=args)
    return None


def execute_kwargs(backend: BackendRow) -> dict[str, Device]:
    """What an execution of a job on `backend` is told besides its input: its device, if
    any (an ideal backend's executions get nothing more)."""
    device = device_of(backend)
    return {} if device is None else {"device": device}


DEVICE_FIELDS = ("backend__profile", "backend__driver", "backend__driver_args")


def configuration(device: Device) -> dict[str, Any]:
    """The device's configuration in the format devices report it (a fresh copy)."""
    if device.profile:
        return profiles.configuration(device.profile)
    return drivers.configuration(drivers.backend(device.driver, device.args))


def properties(device: Device) -> dict[str, Any]:
    """The device's calibration in the format devices report it (a fresh copy)."""
    if device.profile:
        return profiles.properties(device.profile)
    date = drivers.loaded_at(device.driver, device.args)
    return drivers.properties(drivers.backend(device.driver, device.args), date=date)


def calibration_date(device: Device) -> str:
    """When the device was last calibrated (ISO 8601)."""
    if device.profile:
        return str(profiles.properties(device.profile)["last_update_date"])
    return drivers.loaded_at(device.driver, device.args)


@functools.lru_cache(maxsize=16)
def target(device: Device) -> Target:
    """The device's `Target`, as the client builds it (kept per process)."""
    if device.driver:
        return drivers.backend(device.driver, device.args).target
    from qiskit_ibm_runtime.models import BackendConfiguration
    from qiskit_ibm_runtime.utils.backend_converter import convert_to_target
    from qiskit_ibm_runtime.utils.backend_decoder import (
        decode_backend_configuration,
        properties_from_server_data,
    )

    conf = profiles.configuration(device.profile)
    decode_backend_configuration(conf)
    props = properties_from_server_data(profiles.properties(device.profile))
    return convert_to_target(
        configuration=BackendConfiguration.from_dict(conf),
        properties=props,
        include_control_flow=True,
        include_fractional_gates=True,
    )


def rep_delay_seconds(device: Device) -> float | None:
    """The device's default delay between shots, if it reports one."""
    if not device.profile:
        return None
    micros = profiles.configuration(device.profile).get("default_rep_delay")
    return None if micros is None else float(micros) * 1e-6

"""A device backend's `/configuration` and `/properties` answers, under qdash's name.

Pure: no Django. The answers are the device's own (a profile's files, or what a
driver's `Target` implies) with qdash's backend name and limits, so the real client
builds the device's `Target` from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scheduler.devices import device as devices
from scheduler.devices.device import Device


def configuration(
    device: Device, *, name: str, description: str, max_shots: int, max_experiments: int
) -> dict[str, Any]:
    """The device's configuration: qdash's name and limits, no pulse access, not a simulator
    (the client skips sessions for simulators)."""
    conf = devices.configuration(device)
    conf.update(
        backend_name=name,
        local=False,
        simulator=False,
        open_pulse=False,
        max_shots=max_shots,
        max_experiments=max_experiments,
        description=description or conf.get("description") or "",
    )
    conf.setdefault("conditional", False)
    conf.setdefault("memory", True)
    return conf


def properties(device: Device, *, name: str, updated_before: datetime | None) -> dict[str, Any]:
    """The device's calibration; `{}` when asked for one older than it (the client then
    has no properties for that date, as IBM answers for a date before any calibration)."""
    if updated_before is not None:
        if updated_before.tzinfo is None:  # the client sends UTC
            updated_before = updated_before.replace(tzinfo=UTC)
        if datetime.fromisoformat(devices.calibration_date(device)) > updated_before:
            return {}
    props = devices.properties(device)
    props["backend_name"] = name
    return props

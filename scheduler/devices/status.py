"""A device backend whose driver does not load goes offline, and comes back when it does.

Offline is the rules' pause: queued jobs wait, nothing is lost, and the backend's page
says why (`Backend.offline_reason`). Checked when a scheduler or server starts and
when the backend is saved in the admin.
"""

from __future__ import annotations

import importlib
import logging

from scheduler import models, services
from scheduler.clock import Clock
from scheduler.devices import DeviceUnavailable, drivers, profiles
from scheduler.devices.device import device_of

log = logging.getLogger(__name__)


def problem(backend: models.Backend) -> str:
    """Why the backend's device cannot be used now; empty when it can."""
    device = device_of(backend)
    try:
        if device is not None and device.driver:
            importlib.invalidate_caches()  # a module installed since the last try is found
            drivers.instantiate(device.driver, device.args)
        elif device is not None:
            profiles.check(device.profile)
    except DeviceUnavailable as error:
        return str(error)
    return ""


def backends_check(*, backend: models.Backend, clock: Clock | None = None) -> str:
    """Take `backend` offline if its device cannot be used, online again once it can.
    Returns the reason it is offline (empty: it is not)."""
    reason = problem(backend)
    if reason == backend.offline_reason:
        return reason
    models.Backend.objects.filter(pk=backend.pk).update(offline_reason=reason)
    backend.offline_reason = reason
    if reason:
        log.warning("backend %s is offline: %s", backend.name, reason)
        if backend.status == models.Backend.Status.ONLINE:
            services.backends_set_status(
                backend=backend, status=models.Backend.Status.PAUSED, clock=clock
            )
    else:
        log.warning("backend %s is back online: its device loads again", backend.name)
        if backend.status == models.Backend.Status.PAUSED:
            services.backends_set_status(
                backend=backend, status=models.Backend.Status.ONLINE, clock=clock
            )
    return reason


def backends_check_all(*, clock: Clock | None = None) -> None:
    """Check every device backend (at start-up)."""
    devices = models.Backend.objects.exclude(profile="", driver="")
    for backend in devices:
        backends_check(backend=backend, clock=clock)

"""Real devices behind qdash backends: device profiles, drivers, ISA checks, noise, timing.

A backend is one of three kinds (`Device`): an ideal simulator (all-to-all, noiseless,
the default), a *profile* (a device of the installed `qiskit-ibm-runtime`'s fake
provider: its configuration, calibration and noise, read from the package itself), or
a *driver* (any Qiskit `BackendV2`, named by a dotted path and JSON arguments).
"""


class DeviceUnavailable(ValueError):
    """The backend's device cannot be used: its driver does not load, or its profile is
    not in the installed client. The message says why."""

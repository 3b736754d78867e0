"""This deployment's input limits and its decoding sandbox, from the settings."""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings

from scheduler import circuits
from scheduler.sandbox import Failed, LimitExceeded, Sandbox

log = logging.getLogger(__name__)


def input_limits() -> circuits.Limits:
    """`settings.QDASH_LIMITS` as the circuits module's `Limits`."""
    return circuits.Limits(**{name.lower(): value for name, value in settings.QDASH_LIMITS.items()})


@functools.cache
def sandbox() -> Sandbox:
    conf = settings.QDASH_DECODE
    return Sandbox(
        workers=conf["WORKERS"],
        memory_mb=conf["MEMORY_MB"],
        seconds=conf["SECONDS"],
        preload=("scheduler.circuits", "scheduler.quantum_programs"),
    )


def decode(func: Any, *args: Any, **kwargs: Any) -> Any:
    """`func(*args, **kwargs)` in the sandbox; a cap that is hit, or a decoder that breaks
    on the input, is a `CircuitError`."""
    try:
        return sandbox().run(func, *args, **kwargs)
    except LimitExceeded as error:
        raise circuits.CircuitError(error.message) from None
    except Failed as error:  # e.g. a panic in native parsing code: the input is refused
        log.warning("decoding failed on its input: %s", error)
        raise circuits.CircuitError(f"the input could not be decoded: {error}") from None

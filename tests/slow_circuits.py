"""Stands for circuits that run a long while, and for native decoding code that panics;
imported by executor and sandbox child processes, so it imports nothing of Django."""

from __future__ import annotations

import time


def sleepy_execute(program_id: str, params: dict, *, max_memory_mb: int) -> str:
    time.sleep(60)
    return "{}"


class Panic(BaseException):
    """As pyo3's PanicException: not an `Exception`."""


def panicking_decode(text: str) -> None:
    raise Panic(f"native code gave up on {text!r}")


def runaway_execute(program_id: str, params: dict, *, max_memory_mb: int) -> str:
    """A run that never ends unless its params say so; spins the CPU meanwhile."""
    if params.get("quick"):
        return '{"quick": true}'
    while True:
        pass


def hungry_execute(program_id: str, params: dict, *, max_memory_mb: int) -> str:
    """A run that takes far more memory than any cap allows."""
    return str(len(bytearray(64 * 2**30)))

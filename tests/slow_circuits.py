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

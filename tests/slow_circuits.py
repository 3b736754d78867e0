"""Stands for circuits that run a long while; imported by executor child processes, so
it imports nothing of Django."""

from __future__ import annotations

import time


def sleepy_execute(program_id: str, params: dict, *, max_memory_mb: int) -> str:
    time.sleep(60)
    return "{}"

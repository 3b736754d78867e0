"""The start-up heap, kept out of the cyclic garbage collector's full collections."""

from __future__ import annotations

import gc
import importlib

from django.conf import settings


def freeze_startup_heap(*modules: str) -> None:
    """Exempt everything loaded at start-up from the cyclic garbage collector.

    Django, Qiskit and their dependencies leave millions of long-lived objects;
    every full collection walked all of them (about 150 ms on a 2-core machine),
    stalling the event loop and every websocket update behind it. Where this
    process runs circuits, importing the executor first brings Qiskit in before
    the freeze; a scheduler that hands them to executor workers never loads it.
    """
    if settings.QDASH_EXECUTORS != "workers":
        modules += ("scheduler.executor",)
    for module in modules:  # what this process will need, loaded before the freeze
        importlib.import_module(module)

    gc.collect()
    gc.freeze()

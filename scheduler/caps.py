"""The caps every execution of a job's circuits runs under, wherever it runs.

An execution runs in a child process (`scheduler.sandbox`), never in a thread of
a server: in the embedded default's scheduler as in the cluster's executor
workers. The child may use `QDASH_EXECUTOR_MEMORY_MB` of memory (Aer's own cap
is the same, so most circuits too large are refused before they start) and run
for `QDASH_EXECUTION_SECONDS` of wall-clock time, or the job's runtime limit if
that is shorter; it runs at a lower priority than serving. A run past a cap is
killed, and the job fails at once with `execution_limit_exceeded`, naming the cap.

Pure settings and arithmetic: no database.
"""

from __future__ import annotations

from django.conf import settings

from scheduler.sandbox import Sandbox

EXECUTION_LIMIT_EXCEEDED = "execution_limit_exceeded"
EXECUTOR_LOST = "executor_lost"
EXECUTION_FAILED = "execution_failed"
HEADROOM_MB = 1024  # address space for the interpreter's and Aer's threads, beyond the cap
NICE = 10  # executions yield the CPU to serving pages and the API
# A job whose runtime limit is its cap would fail at its limit anyway (the scheduler
# ends it there); the child is given a little longer so the scheduler decides.
LIMIT_GRACE_SECONDS = 1.0


def memory_mb() -> int:
    return int(settings.QDASH_EXECUTION["MEMORY_MB"])


def wall_seconds(runtime_limit: float | None) -> float:
    """How long one execution may run: the setting, or the job's runtime limit (in
    seconds) if shorter."""
    cap = float(settings.QDASH_EXECUTION["SECONDS"])
    if runtime_limit is not None:
        cap = min(cap, runtime_limit + LIMIT_GRACE_SECONDS)
    return cap


def sandbox(*, workers: int, memory: int | None = None) -> Sandbox:
    """Child processes for executions, `workers` at a time."""
    return Sandbox(
        workers=workers,
        memory_mb=memory_mb() if memory is None else memory,
        headroom_mb=HEADROOM_MB,
        seconds=float(settings.QDASH_EXECUTION["SECONDS"]),
        what="the execution",
        # The executor, the circuits modules it reads a job's params and PUBs with, and
        # the devices' noisy execution.
        preload=(
            "scheduler.circuits.params",
            "scheduler.circuits.pubs",
            "scheduler.executor",
            "scheduler.devices.execute",
        ),
        nice=NICE,
    )


def poison_message(stopped: int) -> str:
    return (
        f"The execution of this job stopped its executor {stopped} times "
        "(killed, or the process died); it was not run again."
    )

"""The executor queue's one task (procrastinate): run started job X.

The leader defers it for each job it starts, with the job's id as the queueing
lock (one waiting task per job) and as the lock (one running task per job).
`manage.py executor` runs the workers that take them (`scheduler.execution`).
"""

from __future__ import annotations

from typing import Any

from procrastinate import JobContext
from procrastinate.contrib.django import app

QUEUE = "executions"
TASK = "qdash.execute_job"
worker: Any = None  # the executor process's `execution.Worker`, set by `manage.py executor`


@app.task(name=TASK, queue=QUEUE, pass_context=True)
def execute_job(context: JobContext, uid: str) -> str:
    from scheduler.execution import Attempt

    if worker is None:
        raise RuntimeError("execute_job runs in `manage.py executor` processes only")
    attempts = context.job.attempts if context.job is not None else 0
    return str(worker.run(Attempt(uid=uid, attempt=attempts + 1)))

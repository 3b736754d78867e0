"""The live path end to end: submission, wake-up over the channel layer, the
scheduler loop, the Aer executor and completion, on both channel layers."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from qiskit_ibm_runtime import RuntimeDecoder

from scheduler import circuits, models, wakeup
from scheduler.engine.loop import Scheduler
from scheduler.policy import model as m
from scheduler.services import sessions_close
from scheduler.submission import jobs_submit, sessions_create
from tests.factories import BackendFactory, instance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def live_leader(settings: Any) -> None:
    """Changes wait for the scheduler loop under test, woken over the channel layer."""
    settings.QDASH_EAGER_LEADER = False


@pytest.fixture
def fast_backend() -> models.Backend:
    """A backend whose modeled QPU time is a few hundredths of a second."""
    return BackendFactory(
        name="sim_fast",
        job_overhead=timedelta(milliseconds=20),
        shot_time=timedelta(microseconds=1),
    )


@pytest.mark.postgres
def test_a_wake_up_is_a_notify_delivered_at_commit() -> None:
    """On PostgreSQL the leader LISTENs; a wake-up inside a transaction arrives at commit."""
    from django.db import transaction

    from scheduler.pg import connect

    with connect(application_name="test-listen") as listener:
        listener.execute(f"LISTEN {wakeup.NOTIFY_CHANNEL}")
        with transaction.atomic():
            wakeup.wake()
            assert not list(listener.notifies(timeout=0.3))  # not before the commit
        received = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in received] == [wakeup.NOTIFY_CHANNEL]


def test_a_wake_up_reaches_the_scheduler_channel(channel_layer_kind: str) -> None:
    """Without PostgreSQL, wake-ups travel on the channel layer."""
    layer = get_channel_layer()

    async def send_and_receive() -> dict:
        await sync_to_async(wakeup.send_to_channel)()
        return await asyncio.wait_for(layer.receive(wakeup.CHANNEL), 5)

    assert async_to_sync(send_and_receive)() == {"type": "scheduler.wake"}


def run_until(condition, *, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    """Run the scheduler loop until `condition()` holds (polled), then stop it."""

    async def main() -> None:
        task = asyncio.ensure_future(Scheduler().run(poll=0.2))
        check = sync_to_async(condition)
        try:
            for _ in range(int(seconds / 0.05)):
                if await check():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the scheduler did not get there in time")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async_to_sync(main)()


def test_a_bell_job_runs_through_the_live_scheduler(
    channel_layer_kind: str, fast_backend: models.Backend
) -> None:
    node = instance("h/g/p")
    params = circuits.sampler_params([circuits.parse_qasm(circuits.EXAMPLES["bell"])], 2000)
    job = jobs_submit(
        owner=None, backend=fast_backend, instance=node, program_id="sampler", params=params
    ).job

    run_until(lambda: models.Job.objects.get(pk=job.pk).status == m.COMPLETED)

    job.refresh_from_db()
    counts = json.loads(job.result, cls=RuntimeDecoder)[0].data.c.get_counts()
    assert set(counts) == {"00", "11"}
    assert abs(counts["00"] - 1000) < 200


def test_a_session_runs_its_jobs_then_closes(
    channel_layer_kind: str, fast_backend: models.Backend
) -> None:
    node = instance("h/g/p")
    session, _ = sessions_create(owner=None, backend=fast_backend, instance=node)
    params = circuits.sampler_params([circuits.ghz(3)], 100)
    for _ in range(3):
        jobs_submit(
            owner=None,
            backend=fast_backend,
            instance=node,
            program_id="sampler",
            params=params,
            session_id=session.uid,
        )
    sessions_close(session=session)

    run_until(lambda: models.Session.objects.get(pk=session.pk).state == m.CLOSED)

    assert set(session.jobs.values_list("status", flat=True)) == {m.COMPLETED}
    lanes = list(session.jobs.order_by("started_at").values_list("lane", flat=True))
    assert lanes == [m.FAIR_SHARE, m.SESSION, m.SESSION]
    history = list(
        models.Event.objects.filter(session=session, kind="session_state").values_list(
            "detail__state", flat=True
        )
    )
    assert history == [m.ACTIVE, m.CLOSED]


def test_the_scheduler_runs_as_a_channel_worker(
    channel_layer_kind: str, fast_backend: models.Backend
) -> None:
    from channels.testing import ApplicationCommunicator

    from qdash.asgi import application
    from scheduler.engine.loop import SchedulerConsumer

    node = instance("h/g/p")
    params = circuits.sampler_params([circuits.ghz(2)], 100)
    job = jobs_submit(
        owner=None, backend=fast_backend, instance=node, program_id="sampler", params=params
    ).job
    done = sync_to_async(lambda: models.Job.objects.get(pk=job.pk).status == m.COMPLETED)

    async def main() -> None:
        worker = ApplicationCommunicator(
            application, {"type": "channel", "channel": wakeup.CHANNEL}
        )
        await worker.send_input({"type": "scheduler.wake"})  # what runworker delivers
        try:
            for _ in range(200):
                if await done():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the channel worker did not run the job")
        finally:
            assert SchedulerConsumer.loop is not None
            SchedulerConsumer.loop.cancel()
            await asyncio.gather(SchedulerConsumer.loop, return_exceptions=True)
            SchedulerConsumer.loop = None
            worker.stop()

    async_to_sync(main)()

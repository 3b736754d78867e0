"""The demo: its data loads idempotently and its traffic keeps the queues moving."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model

from scheduler import circuits, demo, models
from scheduler.policy import model as m
from scheduler.submission import jobs_submit

pytestmark = pytest.mark.django_db


def test_loading_the_demo_twice_changes_nothing() -> None:
    demo.demo_load()
    counts = [
        models.Backend.objects.count(),
        models.Instance.objects.count(),
        get_user_model().objects.count(),
        models.Reservation.objects.count(),
    ]

    demo.demo_load()

    assert counts[0] == len(demo.BACKENDS) and counts[2] == len(demo.USERS) + 1  # + traffic
    assert [
        models.Backend.objects.count(),
        models.Instance.objects.count(),
        get_user_model().objects.count(),
        models.Reservation.objects.count(),
    ] == counts


def test_traffic_submits_jobs_into_the_demo_instances() -> None:
    demo.demo_load()
    traffic = demo.Traffic(seed=3)

    for _ in range(20):
        traffic.step()

    jobs = models.Job.objects.select_related("instance", "owner")
    assert jobs.count() > 0
    assert all(job.instance.members.filter(pk=job.owner_id).exists() for job in jobs)
    # Its own account, so a person's queue limit is theirs alone.
    assert {job.owner.username for job in jobs} == {demo.TRAFFIC_USER}
    assert not get_user_model().objects.get(username=demo.TRAFFIC_USER).has_usable_password()


def test_traffic_keeps_to_the_demo_backends() -> None:
    demo.demo_load()
    models.Backend.objects.create(
        name="test_eagle_added", job_overhead=timedelta(seconds=1), shot_time=timedelta(0)
    )
    traffic = demo.Traffic(seed=5)

    for _ in range(30):
        traffic.step()

    used = set(models.Job.objects.values_list("backend__name", flat=True))
    assert used and used <= {name for name, *_ in demo.BACKENDS}
    assert not models.Session.objects.filter(backend__name="test_eagle_added").exists()


def test_traffic_opens_dedicated_sessions_and_batches() -> None:
    demo.demo_load()
    traffic = demo.Traffic(seed=11)

    for _ in range(150):
        traffic.step()

    modes = set(models.Session.objects.values_list("mode", flat=True))
    assert modes == {m.DEDICATED, m.BATCH}


def test_the_traffic_loop_opens_with_a_burst_of_plain_jobs_then_slows_down() -> None:
    steps: list[str] = []

    class Counting(demo.Traffic):
        def step(self, *, plain: bool = False) -> None:
            steps.append("plain job" if plain else "step")

    async def run() -> None:
        loop = asyncio.ensure_future(
            demo.traffic_loop(Counting(seed=1), mean_gap=3600, burst=5, burst_gap=0)
        )
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(steps) >= 5:
                break
        await asyncio.sleep(0.1)  # a sixth step would need about an hour
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop

    async_to_sync(run)()

    assert steps == ["plain job"] * 5


def test_a_plain_step_submits_one_job_outside_any_session() -> None:
    demo.demo_load()
    traffic = demo.Traffic(seed=7)

    for _ in range(4):
        traffic.step(plain=True)

    jobs = models.Job.objects.all()
    assert jobs.count() == 4 and not jobs.filter(session__isnull=False).exists()
    assert not models.Session.objects.exists()


def test_traffic_cancels_only_its_own_jobs() -> None:
    demo.demo_load()
    # Paused backends: every job stays queued, so any of them could be cancelled.
    models.Backend.objects.update(status=models.Backend.Status.PAUSED)
    alice = get_user_model().objects.get(username="alice")
    mine = jobs_submit(
        owner=alice,
        backend=models.Backend.objects.get(name="sim_lima"),
        instance=models.Instance.objects.get(path="ibm-q/open/main"),
        program_id="sampler",
        params=circuits.sampler_params([circuits.ghz(2)], 100),
    ).job
    traffic = demo.Traffic(seed=5)
    for _ in range(5):
        traffic._plain_job()

    for _ in range(10):
        traffic._cancel_one()

    mine.refresh_from_db()
    assert mine.status == m.QUEUED and mine.tags == []
    demo_jobs = models.Job.objects.exclude(pk=mine.pk)
    assert demo_jobs.count() == 5 and all(j.tags == [demo.DEMO_TAG] for j in demo_jobs)
    assert demo_jobs.filter(status=m.CANCELLED).count() == 5

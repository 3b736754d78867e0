"""The demo: its data loads idempotently and its traffic keeps the queues moving."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model

from scheduler import demo, models

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

    assert counts[0] == len(demo.BACKENDS) and counts[2] == len(demo.USERS)
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

    jobs = models.Job.objects.select_related("instance")
    assert jobs.count() > 0
    assert all(job.instance.members.filter(pk=job.owner_id).exists() for job in jobs)


def test_the_traffic_loop_opens_with_a_burst_then_slows_down() -> None:
    steps: list[int] = []

    class Counting(demo.Traffic):
        def step(self) -> None:
            steps.append(1)

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

    assert len(steps) == 5

"""`/instances/usage` in IBM's words, and the `refuse` allocation's 409s."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler import models, services
from scheduler.policy import model as m
from tests.api.conftest import Caller, job_body

pytestmark = pytest.mark.django_db


def charge(path: str, seconds: float, ago: float) -> None:
    models.UsageCharge.objects.create(
        instance=models.Instance.objects.get(path=path),
        kind=models.UsageCharge.Kind.RUN,
        microseconds=round(seconds * 1_000_000),
        ended_at=timezone.now() - timedelta(seconds=ago),
    )


def test_without_an_allocation_the_limit_fields_are_left_out(alice: Caller) -> None:
    charge("hub/group/alice", 2.5, ago=5)

    usage = alice.get("/instances/usage").json()

    assert usage["instance_id"] == alice.crn and usage["plan_id"] == "qdash"
    assert usage["usage_consumed_seconds"] == 2.5
    assert set(usage["usage_period"]) == {"start_time", "end_time"}
    for key in ("usage_allocation_seconds", "usage_limit_seconds", "usage_limit_reached"):
        assert key not in usage


def test_an_allocation_on_the_group_counts_every_project_below_it(
    alice: Caller, bob: Caller
) -> None:
    services.allocations_set(path="hub/group", seconds=10)
    charge("hub/group/alice", 4, ago=60)
    charge("hub/group/bob", 3, ago=30)

    usage = alice.get("/instances/usage").json()

    assert usage["usage_allocation_seconds"] == usage["usage_limit_seconds"] == 10
    assert usage["usage_consumed_seconds"] == 7
    assert usage["usage_limit_reached"] is False
    assert usage["usage_allocation_node"] == "hub/group"


def test_a_used_up_allocation_is_reached_and_says_when_it_frees(alice: Caller) -> None:
    start = timezone.now() - timedelta(hours=1)
    services.allocations_set(
        path="hub/group/alice", seconds=5, period_start=start, period_length=timedelta(days=1)
    )
    charge("hub/group/alice", 6, ago=60)
    charge("hub/group/alice", 50, ago=7200)  # before the period began: not counted

    usage = alice.get("/instances/usage").json()

    assert usage["usage_consumed_seconds"] == 6 and usage["usage_limit_reached"] is True
    period = usage["usage_period"]
    assert period["start_time"] == start.isoformat().replace("+00:00", "Z")
    assert period["end_time"] == (start + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert usage["usage_frees_at"] == period["end_time"]  # the next period begins empty


def test_a_refuse_allocation_used_up_refuses_jobs_and_sessions_with_409(
    alice: Caller, bob: Caller, backend: models.Backend
) -> None:
    services.allocations_set(path="hub/group/alice", seconds=2, enforce=m.REFUSE)
    charge("hub/group/alice", 3, ago=10)

    job = alice.post("/jobs", job_body())
    session = alice.post("/sessions", {"backend": "sim_a", "mode": "dedicated"})
    other = bob.post("/jobs", job_body())

    for refused in (job, session):
        assert refused.status_code == 409
        body = refused.json()
        assert body["code"] == m.ALLOCATION_EXHAUSTED
        assert body["message"].startswith(
            "hub/group/alice has used 3 s of its 2 s allocation; time frees up at "
        )
    assert other.status_code == 201  # another project
    assert models.Job.objects.filter(instance__path="hub/group/alice").count() == 0
    assert models.Session.objects.count() == 0


@pytest.mark.parametrize("enforce", [m.QUEUE, m.SAFE])
def test_queue_and_safe_allocations_never_refuse(
    alice: Caller, backend: models.Backend, enforce: str
) -> None:
    services.allocations_set(path="hub", seconds=0, enforce=enforce)

    assert alice.post("/jobs", job_body()).status_code == 201
    assert alice.get("/instances/usage").json()["usage_limit_reached"] is True

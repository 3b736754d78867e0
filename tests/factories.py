"""Model factories for tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import factory
from django.contrib.auth import get_user_model

from scheduler import engine, models
from scheduler.engine import instances_ensure
from scheduler.policy import model as m


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class BackendFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Backend
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"sim_{n}")
    num_qubits = 5
    job_overhead = timedelta(seconds=1)
    shot_time = timedelta(microseconds=100)


def instance(path: str, share: float = 1.0) -> models.Instance:
    """The instance-tree node at `path` (ancestors created), with its share."""
    node = instances_ensure(path=path)
    if node.share != share:
        node.share = share
        node.save(update_fields=["share"])
    return node


def submit_at(
    job: str,
    *,
    inst: str,
    at: datetime,
    seconds: float = 2,
    backend: str = "sim_a",
    **extra: object,
) -> None:
    """Submit `job` through the engine at `at`, modeled to run `seconds`."""
    action = m.Submit(job, inst, backend, round(seconds * 1_000_000), **extra)  # type: ignore[arg-type]
    engine.step([action], at=at)


def two_hubs() -> models.Backend:
    """Backend sim_a and projects hubA/g/p and hubB/g/p of equal share."""
    instance("hubA/g/p")
    instance("hubB/g/p")
    return BackendFactory(name="sim_a")

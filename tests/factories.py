"""Model factories for tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import factory
from django.contrib.auth import get_user_model
from django.db import transaction

from scheduler import inputs, models, submission
from scheduler.engine import eager
from scheduler.policy import model as m
from scheduler.services import instances_ensure


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
    action = m.Submit(
        job=job, instance=inst, backend=backend, duration=round(seconds * 1_000_000), **extra
    )  # type: ignore[arg-type]
    eager.step([action], at=at)


def two_hubs() -> models.Backend:
    """Backend sim_a and projects hubA/g/p and hubB/g/p of equal share."""
    instance("hubA/g/p")
    instance("hubB/g/p")
    return BackendFactory(name="sim_a")


def queue_job(
    uid: str,
    *,
    inst: str,
    at: datetime,
    backend: str = "sim_a",
    expected: float | None = None,
    duration: float | None = None,
    session: str | None = None,
    start_session: bool = False,
    max_execution_time: float | None = None,
    params: dict | None = None,
) -> models.Job:
    """A job as a web process stores it (queued, with its input), for a leader to apply.

    `expected` is the modeled run time (the executor reports the end), `duration`
    a known run time; both in seconds.
    """
    node = instances_ensure(path=inst)
    row = models.Backend.objects.get(name=backend)
    with transaction.atomic():
        owner = None
        if start_session:
            owner = submission.session_row(
                uid=session or uid,
                owner_id=None,
                backend=row,
                instance=node,
                mode=m.DEDICATED,
                max_ttl=None,
                at=at,
            )
        job = models.Job.objects.create(
            uid=uid,
            backend=row,
            instance=node,
            session=owner or (models.Session.objects.get(uid=session) if session else None),
            params=params if params is not None else {"job": uid},
            submitted_at=at,
            duration=_span(duration),
            expected_duration=_span(expected if expected is not None else duration),
            max_execution_time=_span(max_execution_time),
        )
        inputs.record(models.Input.Kind.SUBMIT, at=at, job=job, session=owner)
    return job


def _span(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def record(action: m.Action, *, at: datetime) -> None:
    """An operator's or a user's action as a web process stores it, for a leader to apply."""
    Kind = models.Input.Kind
    with transaction.atomic():
        if isinstance(action, m.CreateSession):
            row = submission.session_row(
                uid=action.session,
                owner_id=None,
                backend=models.Backend.objects.get(name=action.backend),
                instance=instances_ensure(path=action.instance),
                mode=action.mode,
                max_ttl=action.max_ttl,
                at=at,
            )
            inputs.record(Kind.CREATE_SESSION, at=at, session=row, max_ttl=action.max_ttl)
        elif isinstance(action, m.CloseSession):
            inputs.record(Kind.CLOSE_SESSION, at=at, target=action.session)
        elif isinstance(action, m.CancelSession):
            inputs.record(Kind.CANCEL_SESSION, at=at, target=action.session)
        elif isinstance(action, m.CancelJob):
            inputs.record(Kind.CANCEL_JOB, at=at, job=models.Job.objects.get(uid=action.job))
        elif isinstance(action, m.SetBackendStatus):
            inputs.record(Kind.BACKEND_STATUS, at=at, target=action.backend, status=action.status)
        else:
            raise TypeError(f"no input for {action!r}")

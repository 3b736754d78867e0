"""On PostgreSQL a job outside any session is stored with its input and the leader's
wake-up in one statement (`scheduler.inputs.submit_in_one_statement`)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from scheduler import circuits, models
from scheduler.policy import model as m
from scheduler.submission import jobs_submit
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def submit(settings: Any) -> Any:
    settings.QDASH_EAGER_LEADER = False  # the leader is another process: only notified
    backend = BackendFactory(name="sim_a", num_qubits=5)
    owner = UserFactory(username="alice")
    node = instance("hub/g/p")
    node.members.add(owner)
    params = circuits.sampler_params([circuits.parse_qasm(circuits.EXAMPLES["bell"])], 100)

    def send(**extra: Any) -> Any:
        return jobs_submit(
            owner=owner,
            backend=backend,
            instance=node,
            program_id="sampler",
            params=params,
            **extra,
        )

    return send


def test_the_job_its_input_and_the_wake_up_are_one_statement(submit: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        job = submit(tags=["a"], private=True).job
    writes = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert len(writes) == 1 and "pg_notify" in writes[0]
    assert not any(q["sql"].startswith("NOTIFY") for q in queries.captured_queries)
    stored = models.Job.objects.get(pk=job.pk)
    assert (stored.uid, stored.status, stored.tags, stored.private) == (
        job.uid,
        m.QUEUED,
        ["a"],
        True,
    )
    assert stored.expected_duration == job.expected_duration and stored.expected_duration
    (row,) = models.Input.objects.filter(job=stored)
    assert (row.kind, row.session_id, row.target, row.detail) == (
        models.Input.Kind.SUBMIT,
        None,
        "",
        {},
    )
    assert row.at == stored.submitted_at


def test_a_refused_statement_stores_neither_the_job_nor_its_input(submit: Any) -> None:
    first = submit(uid="qsame").job
    before = models.Input.objects.count()
    # The same id: the statement fails as a whole (in a savepoint: the test's own
    # transaction goes on).
    with pytest.raises(IntegrityError), transaction.atomic():
        submit(uid="qsame")
    assert models.Job.objects.filter(uid="qsame").count() == 1
    assert models.Input.objects.count() == before
    assert models.Input.objects.filter(job_id=first.pk).count() == 1


def test_a_session_job_still_takes_the_transaction(submit: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        job = submit(start_session=True).job
    assert job.session is not None
    assert not any("pg_notify" in q["sql"] for q in queries.captured_queries)
    assert models.Input.objects.filter(job=job, session=job.session).count() == 1

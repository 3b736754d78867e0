"""When the database goes away for a moment: the API answers 503 with Retry-After and
stores nothing, the scheduler retries a failed step at once instead of waiting for its
poll, and a connection the server closed is replaced before a request uses it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError, connection

from scheduler import models
from scheduler.api import jobs
from scheduler.engine.loop import Scheduler
from scheduler.pg import connect
from tests.api.conftest import Caller, job_body

pytestmark = pytest.mark.django_db


def test_a_submission_while_the_database_is_away_is_a_503_the_client_retries(
    alice: Caller, backend: models.Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def away(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(jobs, "jobs_submit", away)
    response = alice.post("/jobs", job_body())
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    body = response.json()
    assert body["code"] == "unavailable" and body["request_id"]
    assert "administrator" not in response.content.decode()
    assert not models.Job.objects.exists()


def test_a_request_while_redis_restarts_is_a_503_too(
    alice: Caller, backend: models.Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis.exceptions

    def away(*args: Any, **kwargs: Any) -> None:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    monkeypatch.setattr(jobs, "jobs_submit", away)
    response = alice.post("/jobs", job_body())
    assert (response.status_code, response["Retry-After"]) == (503, "1")
    assert response.json()["code"] == "unavailable"
    assert not models.Job.objects.exists()


class FlakyScheduler(Scheduler):
    """A scheduler whose first step fails as if its connection had been terminated."""

    def __init__(self) -> None:
        super().__init__(inline=True)
        self.planner.dirty = False  # no plan due: only the quick retry brings a second step
        self.ticks = 0

    def tick(self) -> datetime | None:
        self.ticks += 1
        if self.ticks == 1:
            raise OperationalError("terminating connection due to administrator command")
        return None


def test_a_step_that_lost_its_connection_is_retried_before_the_next_poll() -> None:
    flaky = FlakyScheduler()

    async def main() -> None:
        # A 60 s poll: only the quick retry can bring a second step within the wait.
        task = asyncio.ensure_future(flaky.run(poll=60.0))
        try:
            for _ in range(200):
                if flaky.ticks >= 2:
                    return
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async_to_sync(main)()
    assert flaky.ticks >= 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_after_the_server_closed_its_pooled_connection_succeeds(alice: Caller) -> None:
    connection.close()  # the test's own connection goes back to the pool
    pool = connection.pool
    with pool.connection() as first, pool.connection() as second:  # two idle ones, then
        pids = [c.info.backend_pid for c in (first, second)]
    # The server closes both, as an operator's pg_terminate_backend does.
    with connect(application_name="qdash-test") as admin:
        rows = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid = ANY(%s)",
            [pids],
        ).fetchone()
    assert rows == (2,)
    statuses = [
        alice.client.get("/api/v1/backends", headers=alice.headers()).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]

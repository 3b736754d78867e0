"""`/metrics`: who may scrape, and what a Prometheus parser reads from it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from scheduler.clock import FakeClock
from scheduler.engine.loop import Scheduler
from tests.factories import BackendFactory, instance, queue_job

pytestmark = pytest.mark.django_db


def scrape(client: Client, **extra: Any) -> dict[str, list[Any]]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    text = response.content.decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: list[Any], name: str, **labels: str) -> float:
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise AssertionError(f"no sample {name} {labels}")


def test_a_local_scraper_reads_queue_sessions_plan_and_scheduler_metrics(
    client: Client, settings: Any
) -> None:
    settings.QDASH_EAGER_LEADER = False
    BackendFactory(name="sim_q")
    instance("h/g/p")
    now = timezone.now() - timedelta(seconds=600)  # the scrape comes at the end: now
    scheduler = Scheduler(clock=FakeClock(now), inline=True)
    queue_job("j1", inst="h/g/p", at=now, duration=600, backend="sim_q")
    queue_job("j2", inst="h/g/p", at=now, duration=600, backend="sim_q")
    scheduler.tick()
    queue_job("j3", inst="h/g/p", at=now + timedelta(seconds=600), duration=5, backend="sim_q")
    scheduler.clock.set(now + timedelta(seconds=600))  # type: ignore[attr-defined]
    before = scrape(client)["qdash_job_wait_seconds"]
    scheduler.tick()  # j1 ends; j2 starts after a 600 s wait
    policy = scheduler.leader.policy
    assert policy is not None and policy.now is not None
    scheduler.planner.publish(policy, policy.now)
    client.get("/healthz")
    metrics = scrape(client)

    def waited(samples: list[Any], le: str) -> float:
        labels = {"backend": "sim_q", "lane": "fair_share", "le": le}
        return value(samples, "qdash_job_wait_seconds_bucket", **labels)

    after = metrics["qdash_job_wait_seconds"]
    assert waited(after, "300.0") - waited(before, "300.0") == 0
    assert waited(after, "600.0") - waited(before, "600.0") == 1  # j2's 600 s
    assert (
        value(metrics["qdash_queue_depth"], "qdash_queue_depth", backend="sim_q", lane="fair_share")
        == 1
    )
    assert value(metrics["qdash_sessions"], "qdash_sessions", state="open") == 0
    assert value(metrics["qdash_holds"], "qdash_holds") == 0
    assert value(metrics["qdash_plan_age_seconds"], "qdash_plan_age_seconds") >= 0
    runs = metrics["qdash_job_run_seconds"]
    assert value(runs, "qdash_job_run_seconds_count", backend="sim_q", status="Completed") >= 1
    assert value(metrics["qdash_scheduler_steps"], "qdash_scheduler_steps_total") >= 1
    assert value(metrics["qdash_scheduler_step_seconds"], "qdash_scheduler_step_seconds_count") >= 1
    http = metrics["qdash_http_request_seconds"]
    assert value(http, "qdash_http_request_seconds_count", route="healthz", status="2xx") >= 1
    assert "qdash_websockets" in metrics


def test_a_remote_scraper_needs_the_token(client: Client) -> None:
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    with override_settings(QDASH_METRICS_TOKEN="s3cret-token"):
        assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 401
        wrong = {"HTTP_AUTHORIZATION": "Bearer nope"}
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", **wrong).status_code == 401
        right = {"HTTP_AUTHORIZATION": "Bearer s3cret-token", "REMOTE_ADDR": "10.1.2.3"}
        assert "qdash_sessions" in scrape(client, **right)


@pytest.mark.django_db(transaction=True)
def test_open_websockets_are_counted() -> None:
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import AnonymousUser

    from scheduler.consumers.dashboard import DashboardConsumer
    from scheduler.metrics import WEBSOCKETS
    from tests.factories import UserFactory

    user = UserFactory(username="watcher")
    before = WEBSOCKETS._value.get()

    async def run() -> tuple[float, float]:
        communicator = WebsocketCommunicator(
            DashboardConsumer.as_asgi(), "/ws/live?page=fair_share"
        )
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert connected
        during = WEBSOCKETS._value.get()
        await communicator.disconnect()
        anonymous = WebsocketCommunicator(DashboardConsumer.as_asgi(), "/ws/live")
        anonymous.scope["user"] = AnonymousUser()
        await anonymous.connect()
        return during, WEBSOCKETS._value.get()

    during, after = async_to_sync(run)()
    assert (during, after) == (before + 1, before)

"""Prometheus metrics at `/metrics`.

Two kinds:
- observed where they happen, in the process that does the work: the scheduler
  leader's steps, jobs' waits and runs (observed when the leader starts and ends
  them), HTTP request latency and open websockets in web processes. Processes
  of one host share them when `PROMETHEUS_MULTIPROC_DIR` names a directory they
  all write (prometheus-client's multiprocess mode); otherwise each process
  exports its own (the one-process embedded default exports everything);
- read from the database at scrape time, the same from any process: queue depth
  per backend and lane (the leader's newest queue samples), sessions by state,
  holds, and the published plan's age.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from scheduler.clock import ticks_seconds
from scheduler.policy import LANES
from scheduler.policy import model as m

WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
RUN_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800)

STEPS = Counter("qdash_scheduler_steps", "Scheduler leader steps.")
STEP_SECONDS = Histogram(
    "qdash_scheduler_step_seconds",
    "Duration of one scheduler leader step.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
WAIT_SECONDS = Histogram(
    "qdash_job_wait_seconds",
    "Time from a job's submission to its start.",
    ["backend", "lane"],
    buckets=WAIT_BUCKETS,
)
RUN_SECONDS = Histogram(
    "qdash_job_run_seconds",
    "Time a job held its backend (start to end).",
    ["backend", "status"],
    buckets=RUN_BUCKETS,
)
WEBSOCKETS = Gauge("qdash_websockets", "Open live-update websockets.", multiprocess_mode="livesum")
HTTP_SECONDS = Histogram(
    "qdash_http_request_seconds",
    "Time to answer an HTTP request.",
    ["method", "route", "status"],
)


def observe_step(events: Iterable[m.Event], seconds: float) -> None:
    """A leader step: count it, time it, and the waits and runs of the jobs it moved."""
    STEPS.inc()
    STEP_SECONDS.observe(seconds)
    for event in events:
        job = event.subject
        if event.kind == "job_started":
            WAIT_SECONDS.labels(job.backend, event.detail["lane"]).observe(
                ticks_seconds(event.at - job.submitted_at)
            )
        elif event.kind == "job_ended" and job.started_at is not None:
            RUN_SECONDS.labels(job.backend, event.detail["status"]).observe(
                ticks_seconds(event.at - job.started_at)
            )


class DatabaseCollector:
    """What every process reads alike from the database, at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from scheduler import models, plans
        from scheduler.selectors.cards import latest_samples

        names = dict(models.Backend.objects.values_list("pk", "name"))
        depth = GaugeMetricFamily(
            "qdash_queue_depth", "Queued jobs per backend and lane.", labels=["backend", "lane"]
        )
        for backend_id, sample in latest_samples().items():
            for lane in LANES:
                depth.add_metric([names[backend_id], lane], getattr(sample, lane))
        yield depth
        sessions = GaugeMetricFamily("qdash_sessions", "Sessions by state.", labels=["state"])
        counts = dict(
            models.Session.objects.values_list("state").annotate(n=Count("id")).order_by()
        )
        for state in (m.OPEN, m.ACTIVE, m.INACTIVE, m.CLOSED):
            sessions.add_metric([state], counts.get(state, 0))
        yield sessions
        yield GaugeMetricFamily(
            "qdash_holds",
            "Backends held idle by an active session.",
            value=models.Backend.objects.filter(hold_session__isnull=False).count(),
        )
        yield from _standbys()
        plan = plans.current()
        if plan is not None:
            yield GaugeMetricFamily(
                "qdash_plan_age_seconds",
                "Age of the published plan (the state it starts from).",
                value=plan.age().total_seconds(),
            )


def _standbys() -> Iterator[GaugeMetricFamily]:
    """Each standby scheduler's lag behind the leader's journal, as its heartbeat said
    (`scheduler.engine.standby`); processes not heard from lately are left out."""
    from scheduler import models
    from scheduler.cluster import is_stale

    now = timezone.now()
    families = {
        "warm": GaugeMetricFamily(
            "qdash_standby_warm",
            "1 when a standby scheduler's memory is loaded and follows the leader.",
            labels=["process"],
        ),
        "lag_s": GaugeMetricFamily(
            "qdash_standby_lag_seconds",
            "How long the oldest leader step a standby had not applied had waited.",
            labels=["process"],
        ),
        "behind_inputs": GaugeMetricFamily(
            "qdash_standby_lag_inputs",
            "Inputs the leader applied that a standby had not, at its last look.",
            labels=["process"],
        ),
    }
    rows = models.Process.objects.filter(
        kind__in=[models.Process.Kind.SCHEDULER, models.Process.Kind.EMBEDDED],
        leading_since__isnull=True,
    )
    for row in rows:
        standby = row.detail.get("standby") if isinstance(row.detail, dict) else None
        if not isinstance(standby, dict) or is_stale(row, now):
            continue
        for key, family in families.items():
            value = standby.get(key)
            if value is not None:
                family.add_metric([row.name], float(value))
    yield from families.values()


def registry() -> CollectorRegistry:
    """This process's metrics, or every process's on this host in multiprocess mode."""
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shared = CollectorRegistry()
        MultiProcessCollector(shared)
        shared.register(DatabaseCollector())
        return shared
    if not getattr(REGISTRY, "_qdash_database", False):
        REGISTRY.register(DatabaseCollector())
        REGISTRY._qdash_database = True  # type: ignore[attr-defined]
    return REGISTRY


def allowed(request: HttpRequest) -> int | None:
    """None when the caller may scrape; otherwise the HTTP status that refuses it.

    With QDASH_METRICS_TOKEN, the caller sends `Authorization: Bearer <token>`;
    without, only local addresses may read (a scraper on the same host).
    """
    token = settings.QDASH_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return None if hmac.compare_digest(sent.encode(), token.encode()) else 401
    try:
        local = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        local = False
    return None if local else 403


def scrape(request: HttpRequest) -> HttpResponse:
    refused = allowed(request)
    if refused == 401:
        response = HttpResponse("Send Authorization: Bearer <metrics token>.\n", status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    if refused is not None:
        return HttpResponse(
            "Metrics are for local scrapers, or set QDASH_METRICS_TOKEN.\n", status=refused
        )
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def _observe(request: HttpRequest, response: Any, start: float) -> None:
    match = getattr(request, "resolver_match", None)
    route = match.view_name if match is not None else "unmatched"
    status = f"{response.status_code // 100}xx"
    HTTP_SECONDS.labels(request.method or "", route, status).observe(time.perf_counter() - start)


@sync_and_async_middleware
def timing_middleware(get_response: Callable[[HttpRequest], Any]) -> Callable[..., Any]:
    """HTTP request latency by method, route (the URL pattern's name) and status class."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> Any:
            start = time.perf_counter()
            response = await get_response(request)
            _observe(request, response, start)
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> Any:
        start = time.perf_counter()
        response = get_response(request)
        _observe(request, response, start)
        return response

    return middleware

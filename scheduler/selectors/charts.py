"""The queue-flow charts: each backend's queue per lane over time, and per minute the
jobs entering and starting each lane, drawn from the leader's queue samples."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max
from django.utils import timezone

from scheduler import models
from scheduler.policy import LANES
from scheduler.selectors.cards import BackendCard, sample_depths

CHART_POINTS = 200  # maxPoints of every live chart trace
TIMELINE_SPAN = timedelta(minutes=30)  # history the dashboard charts show
FLOW_BIN = timedelta(minutes=1)  # the queue-flow chart counts arrivals and starts per bin
ENTERED = tuple(f"entered_{lane}" for lane in LANES)
STARTED = tuple(f"started_{lane}" for lane in LANES)


def flow_bin(at: datetime) -> datetime:
    """The start of the FLOW_BIN-long bin holding `at`."""
    step = FLOW_BIN.total_seconds()
    return datetime.fromtimestamp(at.timestamp() // step * step, tz=at.tzinfo)


def _counters(sample: models.QueueSample | None) -> tuple[list[int], list[int]]:
    if sample is None:
        return [0, 0, 0], [0, 0, 0]
    return [getattr(sample, f) for f in ENTERED], [getattr(sample, f) for f in STARTED]


def queue_flow(
    *, backend: models.Backend, since: datetime, now: datetime | None = None
) -> dict[str, Any]:
    """A backend's queue since `since`:

    - depth: queued jobs per lane, a step series up to now (at most CHART_POINTS points);
    - flow: per minute (FLOW_BIN), the jobs that entered each lane and started from it.
    """
    now = max(now or timezone.now(), since)
    samples = models.QueueSample.objects.filter(backend=backend)
    before = samples.filter(at__lt=since).order_by("-at", "-pk").first()
    rows = list(samples.filter(at__gte=since, at__lte=now).order_by("at", "pk"))
    depth = sample_depths(before)
    series: dict[str, list[Any]] = {"x": [since.isoformat()], **{k: [v] for k, v in depth.items()}}
    for row in rows:
        series["x"].append(row.at.isoformat())
        for lane, value in sample_depths(row).items():
            series[lane].append(value)
    series["x"].append(now.isoformat())  # the chart runs up to now
    for lane in LANES:
        series[lane].append(series[lane][-1])
    first_bin = flow_bin(since)
    bins = int((flow_bin(now) - first_bin) / FLOW_BIN) + 1
    entered = {lane: [0] * bins for lane in LANES}
    started = {lane: [0] * bins for lane in LANES}
    last = _counters(before)
    index = 0
    for n in range(bins):
        end = first_bin + (n + 1) * FLOW_BIN
        at_end = last
        while index < len(rows) and rows[index].at < end:
            at_end = _counters(rows[index])
            index += 1
        for i, lane in enumerate(LANES):
            entered[lane][n] = max(0, at_end[0][i] - last[0][i])
            started[lane][n] = max(0, at_end[1][i] - last[1][i])
        last = at_end
    return {
        "depth": {name: values[-CHART_POINTS:] for name, values in series.items()},
        "flow": {
            "bins": [(first_bin + n * FLOW_BIN).isoformat() for n in range(bins)],
            "entered": entered,
            "started": started,
        },
    }


def flow_now(*, cards: Iterable[BackendCard], now: datetime | None = None) -> dict[str, Any]:
    """Per backend of `cards`, the bin of `queue_flow`'s flow holding `now`: the jobs
    that entered and started each lane in it. Two queries for all the backends."""
    now = now or timezone.now()
    start = flow_bin(now)
    by_pk = {card.backend.pk: card for card in cards}
    samples = models.QueueSample.objects.filter(backend_id__in=list(by_pk))
    newest = {
        s.backend_id: s
        for s in samples.filter(
            pk__in=samples.filter(at__lte=now)
            .values("backend")
            .annotate(last=Max("pk"))
            .values("last")
        )
    }
    opening = {
        s.backend_id: s
        for s in samples.filter(
            pk__in=samples.filter(at__lt=start)
            .values("backend")
            .annotate(last=Max("pk"))
            .values("last")
        )
    }
    flows: dict[str, Any] = {}
    for pk, card in by_pk.items():
        (entered, started), (entered0, started0) = (
            _counters(newest.get(pk)),
            _counters(opening.get(pk)),
        )
        flows[card.backend.name] = {
            "bin": start.isoformat(),
            "entered": {lane: max(0, entered[i] - entered0[i]) for i, lane in enumerate(LANES)},
            "started": {lane: max(0, started[i] - started0[i]) for i, lane in enumerate(LANES)},
        }
    return flows

"""The admin's allocations: set on their page or their node's, through the leader, audited;
bad input is a form error that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.utils import timezone

from scheduler import models, services
from tests.factories import instance
from tests.test_admin import admin, split, user  # noqa: F401 - the admin client fixture

pytestmark = pytest.mark.django_db
ADD = "/admin/scheduler/allocation/add/"


@pytest.fixture(autouse=True)
def tree() -> None:
    instance("ibm-q/research/qec")


def form(**fields: Any) -> dict[str, Any]:
    data = {"node": "ibm-q/research", "seconds": "600", "enforce": "queue", "period_length": ""}
    data |= {"period_start_0": "", "period_start_1": ""}
    return data | fields


def state() -> tuple[int, int, int]:
    return (
        models.Allocation.objects.count(),
        models.Event.objects.filter(kind="allocation_changed").count(),
        LogEntry.objects.count(),
    )


def test_it_sets_an_allocation_through_the_leader_audited_with_the_operator(
    admin: Client,  # noqa: F811
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    data = form(enforce="refuse", period_length="86400")
    data |= {f"period_start_{k}": v for k, v in split(start).items()}

    response = admin.post(ADD, data)

    assert response.status_code == 302, response.content.decode()
    row = models.Allocation.objects.get()
    assert (row.instance.path, row.seconds, row.enforce) == ("ibm-q/research", 600, "refuse")
    assert (row.period_start, row.period_length) == (start, timedelta(days=1))
    event = models.Event.objects.get(kind="allocation_changed")
    assert event.detail["seconds"] == 600_000_000 and event.detail["enforce"] == "refuse"
    entry = LogEntry.objects.get(additional_data__action="set allocation")
    assert entry.actor is not None and entry.actor.username == "root"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"node": "ibm-q/nope"}, "node", "No instance-tree node"),
        ({"seconds": "-1"}, "seconds", "0 or more"),
        (
            {"period_start_0": "2026-01-01", "period_start_1": "00:00:00"},
            "period_length",
            "A fixed period needs a length.",
        ),
        (
            {"period_start_0": "2026-01-01", "period_start_1": "00:00:00", "period_length": "0"},
            "period_length",
            "must be positive",
        ),
    ],
)
def test_bad_input_is_a_form_error_next_to_its_field_and_changes_nothing(
    admin: Client,  # noqa: F811
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = state()

    response = admin.post(ADD, form(**fields))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and message in " ".join(errors[field])
    assert state() == before


def test_the_nodes_page_sets_changes_and_removes_its_allocation(
    admin: Client,  # noqa: F811
) -> None:
    node = models.Instance.objects.get(path="ibm-q")
    url = f"/admin/scheduler/instance/{node.pk}/change/"
    base = {"path": "ibm-q", "share": "1", "members": []}
    empty = {"allocation-TOTAL_FORMS": "1", "allocation-INITIAL_FORMS": "0"}
    new = {"allocation-0-seconds": "30", "allocation-0-enforce": "safe"}
    new |= {"allocation-0-period_start_0": "", "allocation-0-period_start_1": ""}
    new |= {"allocation-0-period_length": "", "allocation-0-instance": str(node.pk)}

    assert admin.get(url).status_code == 200
    bad = admin.post(url, base | empty | new | {"allocation-0-seconds": "-3"})
    assert bad.status_code == 200 and not models.Allocation.objects.exists()
    assert admin.post(url, base | empty | new).status_code == 302
    row = models.Allocation.objects.get()
    assert (row.seconds, row.enforce) == (30, "safe")

    kept = {"allocation-TOTAL_FORMS": "1", "allocation-INITIAL_FORMS": "1"}
    kept |= {k: v for k, v in new.items()} | {"allocation-0-id": str(row.pk)}
    assert admin.post(url, base | kept | {"allocation-0-DELETE": "on"}).status_code == 302
    assert not models.Allocation.objects.exists()
    details = models.Event.objects.filter(kind="allocation_changed").values_list(
        "detail", flat=True
    )
    assert [d["seconds"] for d in details.order_by("id")] == [30_000_000, None]


def test_the_list_shows_what_each_allocation_used_and_has_left(
    admin: Client,  # noqa: F811
) -> None:
    services.allocations_set(path="ibm-q/research/qec", seconds=600)
    models.UsageCharge.objects.create(
        instance=models.Instance.objects.get(path="ibm-q/research/qec"),
        kind="run",
        microseconds=612_000_000,
        ended_at=timezone.now() - timedelta(minutes=1),
    )

    page = admin.get("/admin/scheduler/allocation/").content.decode()

    assert "ibm-q/research/qec" in page
    assert '<td class="field-consumed">612</td>' in page
    assert '<td class="field-left">0</td>' in page

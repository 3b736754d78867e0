"""One allocation, the same numbers everywhere: `manage.py allocation list`, the admin, the
fair-share and account pages, the job page's reason, the dashboard's backend card and the
API's usage answer."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scheduler import circuits, models, services
from scheduler.api.auth import instance_crn
from scheduler.auth_tokens import tokens_issue
from scheduler.submission import jobs_submit
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = pytest.mark.django_db


def test_the_cli_admin_pages_and_api_agree(admin_client: Client) -> None:
    now = timezone.now()
    alice = UserFactory(username="alice")
    node = instance("ibm-q/research/qec")
    node.members.add(alice)
    backend = BackendFactory(name="sim_a", num_qubits=5)
    start = now - timedelta(hours=2)
    services.allocations_set(
        path="ibm-q/research", seconds=600, period_start=start, period_length=timedelta(days=1)
    )
    for seconds, ago in ((400, 90), (212, 30), (999, 180)):  # the last before the period
        models.UsageCharge.objects.create(
            instance=node,
            kind="run",
            microseconds=seconds * 1_000_000,
            ended_at=now - timedelta(minutes=ago),
        )
    params = circuits.sampler_params([circuits.parse_qasm(circuits.EXAMPLES["bell"])], 10)
    job = jobs_submit(
        owner=alice, backend=backend, instance=node, program_id="sampler", params=params
    ).job
    frees = (start + timedelta(days=1)).isoformat()

    out = StringIO()
    call_command("allocation", "list", "--json", stdout=out)
    (listed,) = json.loads(out.getvalue())
    assert (listed["consumed_seconds"], listed["left_seconds"]) == (612, 0)
    assert listed["exhausted"] is True and listed["frees"] == frees

    admin_page = admin_client.get("/admin/scheduler/allocation/").content.decode()
    assert '<td class="field-consumed">612</td>' in admin_page
    assert '<td class="field-left">0</td>' in admin_page

    viewer = Client()
    viewer.force_login(alice)
    fair_share = viewer.get(reverse("fair_share")).content.decode()
    assert 'aria-valuemax="600" aria-valuenow="612"' in fair_share
    assert "612 s of 600 s" in fair_share
    account = viewer.get(reverse("account")).content.decode()
    row = re.search(r'<tr data-instance="ibm-q/research/qec">.*?</tr>', account, re.S)
    assert row is not None
    assert "600 s on ibm-q/research (queue)" in row[0] and "0 s: used up" in row[0]
    assert f'datetime="{frees}"' in row[0]
    job_page = viewer.get(reverse("job", args=[job.uid])).content.decode()
    assert "ibm-q/research has used 612 s of its 600 s allocation; it frees at" in job_page
    assert f'datetime="{frees}"' in job_page

    dashboard = viewer.get(reverse("dashboard")).content.decode()
    assert "1 job held back by allocations" in dashboard

    _, key = tokens_issue(user=alice)
    usage = Client().get(
        "/api/v1/instances/usage",
        headers={
            "Authorization": f"Bearer {key}",
            "Service-CRN": instance_crn("ibm-q/research/qec"),
        },
    )
    answer = usage.json()
    assert answer["usage_consumed_seconds"] == 612
    assert answer["usage_allocation_seconds"] == answer["usage_limit_seconds"] == 600
    assert answer["usage_limit_reached"] is True
    assert answer["usage_frees_at"] == frees.replace("+00:00", "Z")

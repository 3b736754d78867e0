"""The cluster page in a real browser (Debian chromium via Playwright), against `serve --demo`:
an operator sees the processes, and the tables follow their heartbeats without a reload."""

from __future__ import annotations

import re
import socket

from tests.browser.conftest import ARTIFACTS, Serve, logged_in, playwright

WORKER = "worker-b:4242"  # an executor worker on another machine, as its row would say

ADD_ROWS = f"""
from datetime import timedelta
from django.utils import timezone
from scheduler import models
now = timezone.now()
def row(name, kind, ago, **fields):
    host, pid = name.split(":")
    models.Process.objects.update_or_create(name=name, defaults=dict(
        kind=kind, host=host, pid=int(pid), started_at=now - timedelta(minutes=42),
        heartbeat_at=now - timedelta(seconds=ago), **fields))
row("{WORKER}", "executor", 60, detail={{"concurrency": 2, "memory_mb": 2048}})
row("sched-b:5151", "scheduler", 1, detail={{"role": "standby", "standby": {{
    "warm": True, "lag_s": 0.21, "behind_inputs": 3, "behind_steps": 2, "reason": ""}}}})
row("web-b:6161", "web", 1, detail={{"websockets": 12}})
import time
from django.db.models import F
running = models.Job.objects.filter(status="Running").annotate(
    end=F("started_at") + F("expected_duration")).order_by("-end")
for _ in range(100):  # the demo traffic keeps the backends busy; wait for a running job
    job = running.first()  # the one that runs longest
    if job:
        break
    time.sleep(0.2)
models.Execution.objects.create(job=job, worker="{WORKER}", started_at=now - timedelta(seconds=8))
print(job.uid)
"""
BEAT = f"""
from django.utils import timezone
from scheduler import models
names = ["{WORKER}", "sched-b:5151", "web-b:6161"]
models.Process.objects.filter(name__in=names).update(heartbeat_at=timezone.now())
"""


def test_an_operator_watches_the_cluster(browser: playwright.Browser, restartable: Serve) -> None:
    server = restartable.url
    page, errors = logged_in(browser, server, "admin", size=(1400, 1000))
    dashboard, _ = logged_in(browser, server, "alice")  # one websocket client
    page.click("nav >> text=Cluster")
    page.wait_for_url(server + "/cluster")
    assert restartable.process is not None
    serve = f'tr[data-process="{socket.gethostname()}:{restartable.process.pid}"]'
    page.wait_for_selector(f"{serve} .badge.online")
    assert "leader" in page.inner_text(f"{serve} td.role")
    page.wait_for_function(
        f"() => document.querySelector('{serve} td.websockets').textContent.trim() === '1'",
        timeout=10_000,
    )  # the dashboard's socket, reported with the next heartbeat
    assert page.inner_text("#cluster-leader").startswith("Scheduler leader")

    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    uid = restartable.manage("shell", "-c", ADD_ROWS).split()[-1]
    worker = f'tr[data-process="{WORKER}"]'
    page.wait_for_selector(f"{worker} .badge.stale", timeout=10_000)
    row = page.inner_html(worker)  # one refresh's row, read while the job runs
    assert f'<a href="/jobs/{uid}"' in row
    assert '<td class="busy">1 of 2</td>' in row
    assert re.search(r"running \d+\.\ds", row)
    assert page.inner_text('tr[data-process="web-b:6161"] td.websockets') == "12"
    standby = 'tr[data-process="sched-b:5151"]'
    assert "standby" in page.inner_text(f"{standby} td.role")
    lag = page.inner_text(f"{standby} .standby-lag")  # its memory, and how far behind
    assert lag == "memory warm: 0.21 s, 3 inputs behind (2 steps)"

    restartable.manage("shell", "-c", BEAT)  # the worker (and the others) answer again
    page.wait_for_selector(f"{worker} .badge.online", timeout=10_000)
    assert page.evaluate("window.loadedOnce === true")  # refreshed in place, not reloaded
    assert "on" in (page.get_attribute("#live-status", "class") or "")  # its polls succeed
    page.screenshot(path=str(ARTIFACTS / "browser_cluster.png"), full_page=True)

    page.goto(f"{server}/jobs/{uid}")  # the job it runs
    assert uid in page.inner_text("main")
    dashboard.close()
    assert errors == []

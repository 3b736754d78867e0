"""The cluster page: what each process reported, the leader and the standbys, the
executors' current jobs from their ledger, the plan's age; operators only."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from scheduler import models, selectors
from scheduler.selectors.cluster import cluster_processes
from tests.factories import BackendFactory, UserFactory, submit_at, two_hubs

pytestmark = pytest.mark.django_db
Kind = models.Process.Kind


@pytest.fixture(autouse=True)
def _interval(settings: Any) -> None:
    settings.QDASH_PROCESS_HEARTBEAT = 2.0  # not responding after 6 s


def process(
    name: str,
    kind: str,
    *,
    now: datetime,
    beat_ago: float = 1.0,
    up_for: float = 600.0,
    leading_for: float | None = None,
    **detail: Any,
) -> models.Process:
    host, pid = name.split(":")
    return models.Process.objects.create(
        name=name,
        kind=kind,
        host=host,
        pid=int(pid),
        started_at=now - timedelta(seconds=up_for),
        heartbeat_at=now - timedelta(seconds=beat_ago),
        leading_since=None if leading_for is None else now - timedelta(seconds=leading_for),
        detail=detail,
    )


def names(rows: list[selectors.ProcessRow]) -> list[str]:
    return [row.process.name for row in rows]


# ----------------------------------------------------------------- selector
def test_the_leader_comes_first_and_the_others_are_standbys() -> None:
    now = timezone.now()
    process("a:1", Kind.SCHEDULER, now=now)
    process("b:2", Kind.SCHEDULER, now=now, leading_for=30, last_step={"ms": 1.5}, steps=9)
    process("c:3", Kind.SCHEDULER, now=now)
    cluster = cluster_processes(now=now)
    assert names(cluster.schedulers) == ["b:2", "a:1", "c:3"]
    assert [row.role for row in cluster.schedulers] == ["leader", "standby", "standby"]
    assert cluster.leader is not None and cluster.leader.process.name == "b:2"
    assert cluster.leader.process.leading_since == now - timedelta(seconds=30)


def test_a_silent_leader_is_stale_and_no_longer_the_leader() -> None:
    """The old leader's row still says it leads; the standby that took over leads."""
    now = timezone.now()
    process("old:1", Kind.SCHEDULER, now=now, beat_ago=6.5, leading_for=120)
    process("new:2", Kind.SCHEDULER, now=now, beat_ago=0.4, leading_for=2)
    process("spare:3", Kind.SCHEDULER, now=now, beat_ago=5.5)
    cluster = cluster_processes(now=now)
    assert [(r.process.name, r.stale) for r in cluster.schedulers] == [
        ("new:2", False),
        ("spare:3", False),  # 5.5 s: within three 2 s intervals
        ("old:1", True),
    ]
    assert cluster.leader is not None and cluster.leader.process.name == "new:2"
    assert cluster.schedulers[2].role == "leader" and not cluster.schedulers[2].leading


def test_without_a_responding_leader_there_is_none() -> None:
    now = timezone.now()
    process("old:1", Kind.SCHEDULER, now=now, beat_ago=30, leading_for=300)
    process("spare:2", Kind.SCHEDULER, now=now)
    assert cluster_processes(now=now).leader is None


def test_an_embedded_process_can_lead() -> None:
    now = timezone.now()
    process("one:1", Kind.EMBEDDED, now=now, leading_for=5, websockets=3, executing=["qjob1"])
    cluster = cluster_processes(now=now)
    assert cluster.leader is not None and cluster.leader.process.name == "one:1"
    assert cluster.websockets == 3 and cluster.web_processes == 1
    assert [job.uid for job in cluster.embedded[0].jobs] == ["qjob1"]


def test_heartbeat_ages_and_websockets_per_web_process() -> None:
    now = timezone.now()
    process("w:1", Kind.WEB, now=now, beat_ago=1.25, websockets=4)
    process("w:2", Kind.WEB, now=now, beat_ago=7, websockets=0)
    cluster = cluster_processes(now=now)
    assert [(r.process.name, r.websockets, r.stale) for r in cluster.web] == [
        ("w:1", 4, False),
        ("w:2", 0, True),
    ]
    assert cluster.web[0].heartbeat_age == timedelta(seconds=1.25)
    assert cluster.websockets == 4


def test_executors_current_jobs_come_from_the_ledger() -> None:
    two_hubs()
    BackendFactory(name="sim_b")
    now = timezone.now()
    submit_at("qone", inst="hubA/g/p", at=now - timedelta(seconds=20), seconds=60)
    submit_at("qtwo", inst="hubB/g/p", at=now - timedelta(seconds=20), seconds=60, backend="sim_b")
    one = models.Job.objects.get(uid="qone")
    two = models.Job.objects.get(uid="qtwo")
    process("x:1", Kind.EXECUTOR, now=now, concurrency=2, memory_mb=512, running={"qone": 3.0})
    process("x:2", Kind.EXECUTOR, now=now, concurrency=1)
    ledger = models.Execution.objects
    # x:2 ran qone first and died (the leader marked the attempt lost); x:1 runs it again.
    ledger.create(
        job=one,
        worker="x:2",
        attempt=1,
        started_at=now - timedelta(seconds=15),
        outcome=models.Execution.Outcome.LOST,
    )
    ledger.create(job=one, worker="x:1", attempt=2, started_at=now - timedelta(seconds=3))
    # x:1 ran qtwo once, finished; then started it again after a discarded write.
    ledger.create(
        job=two,
        worker="x:1",
        attempt=1,
        started_at=now - timedelta(seconds=10),
        ended_at=now - timedelta(seconds=5),
        outcome="written",
    )
    ledger.create(job=two, worker="x:2", attempt=2, started_at=now - timedelta(seconds=1))
    ledger.create(job=two, worker="gone:9", attempt=3, started_at=now)  # no process row
    # x:2 was running a job that was cancelled meanwhile; it stops within seconds.
    submit_at("qthree", inst="hubA/g/p", at=now - timedelta(seconds=20), seconds=60)
    three = models.Job.objects.get(uid="qthree")
    ledger.create(job=three, worker="x:2", attempt=1, started_at=now - timedelta(seconds=9))
    models.Job.objects.filter(uid="qthree").update(status=models.Job.Status.CANCELLED)
    cluster = cluster_processes(now=now)
    by_name = {row.process.name: row for row in cluster.executors}
    assert [(j.uid, j.attempt) for j in by_name["x:1"].jobs] == [("qone", 2)]
    assert [(j.uid, j.attempt) for j in by_name["x:2"].jobs] == [("qtwo", 2)]
    assert by_name["x:1"].jobs[0].started_at == now - timedelta(seconds=3)
    assert by_name["x:1"].concurrency == 2 and by_name["x:2"].concurrency == 1


def test_the_plan_age_and_staleness() -> None:
    now = timezone.now()
    assert cluster_processes(now=now).plan is None
    models.PublishedPlan.objects.create(
        pk=1, at=now - timedelta(seconds=2), made_at=now, pages=1, backends={}
    )
    fresh = cluster_processes(now=now)
    assert fresh.plan_age == timedelta(seconds=2) and not fresh.plan_stale
    models.PublishedPlan.objects.filter(pk=1).update(at=now - timedelta(seconds=40))
    old = cluster_processes(now=now)
    assert old.plan_age == timedelta(seconds=40) and old.plan_stale


def test_an_empty_cluster() -> None:
    cluster = cluster_processes()
    assert cluster.empty and cluster.leader is None and cluster.websockets == 0


# -------------------------------------------------------------------- views
@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(UserFactory(username="op", is_staff=True))
    return client


@pytest.fixture
def cluster_rows() -> None:
    two_hubs()
    now = timezone.now()
    submit_at("qrunning1", inst="hubA/g/p", at=now - timedelta(seconds=5), seconds=60)
    process("s:10", Kind.SCHEDULER, now=now, leading_for=65, last_step={"ms": 2.5}, steps=40)
    process("s:11", Kind.SCHEDULER, now=now, beat_ago=20)
    process("s:12", Kind.SCHEDULER, now=now, beat_ago=40, leading_for=600)  # killed
    process("e:20", Kind.EXECUTOR, now=now, concurrency=2, memory_mb=1024)
    process("w:30", Kind.WEB, now=now, websockets=7)
    job = models.Job.objects.get(uid="qrunning1")
    models.Execution.objects.create(job=job, worker="e:20", started_at=now - timedelta(seconds=4))
    models.PublishedPlan.objects.update_or_create(
        pk=1, defaults={"at": now - timedelta(seconds=30), "made_at": now, "pages": 1}
    )  # the leader's steps published one


def row_of(body: str, name: str) -> str:
    found = re.search(rf'<tr data-process="{re.escape(name)}".*?</tr>', body, re.S)
    assert found, name
    return found.group(0)


def test_an_operator_sees_every_process(operator: Client, cluster_rows: None) -> None:
    response = operator.get("/cluster")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'href="/cluster"' in body  # the nav links to it
    assert 'hx-trigger="every 2s"' in body
    leader = row_of(body, "s:10")
    assert "<strong>leader</strong>" in leader and "up</span>" in leader
    assert "2.5 ms; 40 steps" in leader
    killed = row_of(body, "s:12")
    assert "was leader" in killed and "<strong>leader" not in killed
    assert "not responding" in killed
    standby = row_of(body, "s:11")
    assert "standby" in standby and "not responding" in standby and "(up " not in standby
    assert re.search(r"\(up 10m [0-2]s\)", row_of(body, "e:20"))  # still reports: up for
    assert re.search(r"2[01]\.\ds ago", standby)  # 20 s before the request
    executor = row_of(body, "e:20")
    assert 'href="/jobs/qrunning1"' in executor and "1 of 2" in executor
    assert "1024 MB" in executor
    assert ">7<" in row_of(body, "w:30")
    assert re.search(r"The plan is 3[01]\.\ds old", body)
    assert "s:10</strong>, leading since" in body


def test_the_fragment_is_the_tables_only(operator: Client, cluster_rows: None) -> None:
    response = operator.get("/cluster", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and "<nav" not in body and "hx-trigger" not in body
    assert 'data-process="e:20"' in body and 'href="/jobs/qrunning1"' in body
    models.Process.objects.filter(name="s:11").update(heartbeat_at=timezone.now())
    again = operator.get("/cluster", HTTP_HX_REQUEST="true").content.decode()
    assert "not responding" not in row_of(again, "s:11")


def test_empty_states(operator: Client) -> None:
    body = operator.get("/cluster").content.decode()
    assert "No scheduler leads" in body
    assert "No scheduler process reports itself." in body
    assert "No executor worker reports itself" in body
    assert "No web process of its own reports itself." in body
    assert "No plan published yet." in body
    assert 'id="cluster-embedded"' not in body


def test_researchers_are_refused(client: Client, cluster_rows: None) -> None:
    client.force_login(UserFactory(username="alice"))
    assert client.get("/cluster").status_code == 403
    assert client.get("/cluster", HTTP_HX_REQUEST="true").status_code == 403
    assert 'href="/cluster"' not in client.get("/").content.decode()


def test_anonymous_users_go_to_login(client: Client) -> None:
    response = client.get("/cluster")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_leaving_process_does_not_wait_on_a_locked_database_for_its_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Heartbeat.stop` runs at exit: when removing its row blocks (a lock held
    elsewhere), it gives up after `STOP_SECONDS` and the process leaves anyway."""
    import threading

    from scheduler import cluster

    released = threading.Event()
    started = threading.Event()

    def blocked_remove(self: cluster.Heartbeat) -> None:
        started.set()
        released.wait(30)

    monkeypatch.setattr(cluster, "STOP_SECONDS", 0.2)
    monkeypatch.setattr(cluster.Heartbeat, "_remove_row", blocked_remove)
    monkeypatch.setattr(cluster.Heartbeat, "beat", lambda self: None)  # no row to write
    heartbeat = cluster.Heartbeat(models.Process.Kind.WEB).start()
    heartbeat.stop()  # returns although the removal has not finished
    assert started.is_set() and not released.is_set()
    remover = next(t for t in threading.enumerate() if t.name == "heartbeat-stop")
    assert remover.daemon and remover.is_alive()  # it cannot hold up the interpreter's exit
    released.set()
    remover.join(5)
    assert not remover.is_alive()

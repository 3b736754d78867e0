"""Pruning: final jobs only, archived before they are deleted, charges a window or a
period counts kept, rollups kept, and an interrupted prune loses nothing."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from scheduler import models
from scheduler.history import prune, rollups
from scheduler.history.report import usage_report
from scheduler.policy import model as m
from tests.history.data import DAY0, at, history

pytestmark = pytest.mark.django_db
DAYS = 4
NOW = at(DAY0 + timedelta(days=10), 3600)
OLDER_THAN = timedelta(days=7)  # the first three days of history go, not the fourth
CUTOFF = NOW - OLDER_THAN
WINDOW = 8 * 86_400  # seconds: a usage window that reaches back into the pruned days


def report_rows() -> list[list[str]]:
    span = {"since": DAY0, "until": DAY0 + timedelta(days=DAYS), "now": NOW}
    return [row.cells() for row in usage_report(**span, by="day").rows]


def open_jobs() -> list[str]:
    """A queued and a running job whose submission is as old as the pruned ones."""
    old = at(DAY0, 10)
    backend, node = models.Backend.objects.first(), models.Instance.objects.get(path="hubA/g/p")
    for uid, status in (("still-queued", m.QUEUED), ("still-running", m.RUNNING)):
        models.Job.objects.create(
            uid=uid,
            backend=backend,
            instance=node,
            status=status,
            submitted_at=old,
            started_at=old if status == m.RUNNING else None,
        )
    return ["still-queued", "still-running"]


def test_it_archives_then_deletes_final_jobs_and_keeps_what_is_still_counted(
    tmp_path: Path, settings: Any
) -> None:
    settings.QDASH = {**settings.QDASH, "USAGE_WINDOW": WINDOW}
    history(days=DAYS)
    kept_open = open_jobs()
    rows_before = report_rows()
    old = set(
        models.Job.objects.filter(status__in=rollups.FINAL, ended_at__lt=CUTOFF).values_list(
            "uid", flat=True
        )
    )
    young = set(models.Job.objects.filter(ended_at__gte=CUTOFF).values_list("uid", flat=True))
    assert old and young
    horizon = prune.charge_horizon(NOW)
    assert horizon == NOW - timedelta(seconds=WINDOW) + timedelta(microseconds=1)
    charges_of_old = models.UsageCharge.objects.filter(job__uid__in=old)
    counted = set(charges_of_old.filter(ended_at__gte=horizon).values_list("id", flat=True))
    uncounted = set(charges_of_old.filter(ended_at__lt=horizon).values_list("id", flat=True))
    assert counted and uncounted
    events = {
        uid: models.Event.objects.create(at=at(DAY0, 1), kind="job_ended", job=job, detail={"n": 1})
        for uid, job in ((j.uid, j) for j in models.Job.objects.filter(uid__in=old))
    }

    result = prune.prune(older_than=OLDER_THAN, archive_dir=tmp_path, now=NOW, batch=25)

    assert result.jobs == len(old) and result.batches == -(-len(old) // 25)
    left = set(models.Job.objects.values_list("uid", flat=True))
    assert left == young | set(kept_open)
    assert not models.Event.objects.filter(kind="job_ended").exists()
    # a charge still counted stays, without its job; an uncounted one goes
    assert (
        set(
            models.UsageCharge.objects.filter(id__in=counted | uncounted).values_list(
                "id", flat=True
            )
        )
        == counted
    )
    assert result.charges == len(uncounted) and result.kept_charges == len(counted)
    # the archive has every pruned job with its params, result, events and charges
    assert result.archive is not None and result.archive.parent == tmp_path
    records = prune.read_archive(result.archive)
    assert {r["job"]["uid"] for r in records} == old
    for record in records:
        job = record["job"]
        assert job["params"]["pubs"][0][0].startswith("circuit ")
        assert job["instance"].count("/") == 2 and job["backend"] in ("sim_a", "sim_b")
        assert [e["id"] for e in record["events"]] == [events[job["uid"]].id]
        if job["started_at"] is not None:
            assert [c["microseconds"] for c in record["charges"]]
        if job["status"] == m.COMPLETED:
            assert job["result"] is not None
    # the rollups stay: the report is the same
    assert report_rows() == rows_before


@pytest.mark.parametrize("where", ["between_batches", "after_archiving_a_batch"])
def test_an_interrupted_prune_loses_nothing(tmp_path: Path, monkeypatch: Any, where: str) -> None:
    history(days=DAYS)
    everything = set(models.Job.objects.values_list("uid", flat=True))
    real = prune.prune_batch
    calls = {"n": 0}

    def fail_on_second(ids: list[int], archive: Any, horizon: Any, result: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            if where == "after_archiving_a_batch":  # archived, then the database fails
                archive.write(prune._lines(ids))
            raise RuntimeError("interrupted")
        real(ids, archive, horizon, result)

    monkeypatch.setattr(prune, "prune_batch", fail_on_second)
    with pytest.raises(RuntimeError):
        prune.prune(older_than=OLDER_THAN, archive_dir=tmp_path, now=NOW, batch=20)
    archived = {r["job"]["uid"] for f in tmp_path.iterdir() for r in prune.read_archive(f)}
    left = set(models.Job.objects.values_list("uid", flat=True))
    assert len(everything - left) == 20  # the first batch went
    assert everything - left <= archived  # every deleted job is in the archive
    assert left | archived == everything
    monkeypatch.setattr(prune, "prune_batch", real)
    # run again: the rest goes; across both archives every old job is there
    again = prune.prune(older_than=OLDER_THAN, archive_dir=tmp_path, now=NOW + timedelta(seconds=1))
    assert again.jobs > 0
    archived = {r["job"]["uid"] for f in tmp_path.iterdir() for r in prune.read_archive(f)}
    left = set(models.Job.objects.values_list("uid", flat=True))
    assert everything - left <= archived and left | archived == everything
    assert all(j.ended_at >= CUTOFF for j in models.Job.objects.all())


def test_it_prunes_only_days_that_are_rolled_up(tmp_path: Path, monkeypatch: Any) -> None:
    history(days=DAYS)
    monkeypatch.setattr(rollups, "roll", lambda *a, **k: 0)  # the leader has rolled nothing
    assert prune.prune(older_than=OLDER_THAN, archive_dir=tmp_path, now=NOW).jobs == 0
    assert list(tmp_path.iterdir()) == []  # no empty archive is left behind


def test_the_command_prints_a_summary_and_refuses_bad_input(tmp_path: Path) -> None:
    history(days=1)
    models.Job.objects.update(ended_at=at(DAY0, 5000))  # long ago: all prunable now
    total = models.Job.objects.count()
    out = io.StringIO()
    call_command("prune", "--older-than", "30", "--archive", str(tmp_path), stdout=out)
    assert out.getvalue().startswith(f"pruned {total:,} jobs")
    assert "archived to" in out.getvalue()
    assert models.Job.objects.count() == 0
    for args, message in (
        (["--older-than", "0"], "at least 1 day"),
        (["--older-than", "5", "--archive", str(next(tmp_path.iterdir()))], "not a directory"),
        (["--older-than", "5", "--batch", "0"], "--batch"),
    ):
        err = io.StringIO()
        with pytest.raises(SystemExit) as exit_:
            call_command("prune", *args, stdout=io.StringIO(), stderr=err)
        assert exit_.value.code == 2 and message in err.getvalue()


def test_a_fixed_allocation_period_keeps_its_charges_past_the_window(
    tmp_path: Path, settings: Any
) -> None:
    settings.QDASH = {**settings.QDASH, "USAGE_WINDOW": 86_400}  # a one-day window
    history(days=DAYS)
    node = models.Instance.objects.get(path="hubA")
    models.Allocation.objects.create(
        instance=node, seconds=1e6, period_start=at(DAY0, 0), period_length=timedelta(days=30)
    )
    assert prune.charge_horizon(NOW) == at(DAY0, 0)  # the period that holds NOW began then
    charges = models.UsageCharge.objects.count()
    result = prune.prune(older_than=OLDER_THAN, archive_dir=tmp_path, now=NOW)
    assert result.jobs > 0 and result.charges == 0
    assert models.UsageCharge.objects.count() == charges

"""The history's rollups (`scheduler.history`, docs/history.md)."""

from __future__ import annotations

from django.db import models

from scheduler.models.state import Backend, Instance


class UsageDay(models.Model):
    """One instance's usage on one backend on one UTC day: the reports' rollup
    (`scheduler.history`, docs/history.md).

    Written by the scheduler leader for closed days. Run and hold seconds are the
    usage charges that ended that day; jobs count by the final state they reached
    that day; `waits` is a histogram of those jobs' waits (submitted to started) in
    the fixed buckets of `scheduler.history.waits`, so percentiles of any span are
    the merged histograms'.
    """

    day = models.DateField()
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="usage_days")
    # Empty: charges whose backend is no longer known (their job and session pruned).
    backend = models.ForeignKey(
        Backend, null=True, blank=True, on_delete=models.CASCADE, related_name="usage_days"
    )
    run_us = models.BigIntegerField(default=0)
    hold_us = models.BigIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    # Little-endian 32-bit words: the lowest non-empty bucket, then counts from it.
    waits = models.BinaryField(default=b"", blank=True, help_text="wait histogram")

    class Meta:
        ordering = ["day", "instance", "backend"]
        indexes = [models.Index(fields=["day", "instance"])]
        constraints = [
            models.UniqueConstraint(fields=["day", "instance", "backend"], name="usage_day_once"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.instance_id} {self.backend_id}"


class HistoryMark(models.Model):
    """One row: the days before `rolled_until` have their rollups (`UsageDay`)."""

    rolled_until = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rolled until {self.rolled_until}"

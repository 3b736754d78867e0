"""A rollup's wait histogram as stored: packed words that read back to the buckets
they were built from, and a migration that carries older JSON histograms over."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from scheduler.history import waits

BEFORE = [("scheduler", "0011_step_journal")]
AFTER = [("scheduler", "0012_binary_waits")]


def test_a_packed_histogram_reads_back_to_its_buckets() -> None:
    seen = [0.0, 0.004, 0.5, 0.5, 3.0, 61.0, 61.5, 7200.0, 10**9]
    packed = waits.histogram(seen)
    assert isinstance(packed, bytes) and len(packed) % 4 == 0
    assert waits.unpack(packed) == dict(Counter(waits.bucket(s) for s in seen))
    assert waits.histogram([]) == b"" and waits.unpack(b"") == {}
    merged = waits.new()
    waits.merge(merged, packed)
    waits.merge(merged, memoryview(packed))  # what PostgreSQL's driver may hand back
    waits.merge(merged, b"")
    assert int(merged.sum()) == 2 * len(seen)
    assert merged[waits.SIZE - 1] == 2  # a wait past a year lands in the last bucket


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_json_histograms_over_and_back() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    instance = apps.get_model("scheduler", "Instance").objects.create(path="h")
    old = apps.get_model("scheduler", "UsageDay")
    old.objects.create(day=date(2026, 1, 1), instance=instance, waits={"o": 12, "c": [3, 0, 5]})
    old.objects.create(day=date(2026, 1, 2), instance=instance, waits={})

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("scheduler", "UsageDay")
    stored = {row.day.day: bytes(row.waits) for row in new.objects.all()}
    assert waits.unpack(stored[1]) == {12: 3, 14: 5}
    assert stored[2] == b""

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    back = executor.loader.project_state(BEFORE).apps.get_model("scheduler", "UsageDay")
    assert {row.day.day: row.waits for row in back.objects.all()} == {
        1: {"o": 12, "c": [3, 0, 5]},
        2: {},
    }
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())

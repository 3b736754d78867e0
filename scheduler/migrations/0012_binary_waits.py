"""Rollups keep their wait histograms as packed 32-bit words instead of JSON: a
90-day report reads thousands of them, and decoding JSON was most of its time."""

import numpy as np
from django.db import migrations, models


def to_words(apps, schema_editor):
    UsageDay = apps.get_model("scheduler", "UsageDay")
    for row in UsageDay.objects.exclude(waits_json={}).iterator(2_000):
        low, counts = row.waits_json["o"], row.waits_json["c"]
        row.waits = np.asarray([low, *counts], dtype="<u4").tobytes()
        row.save(update_fields=["waits"])


def to_json(apps, schema_editor):
    UsageDay = apps.get_model("scheduler", "UsageDay")
    for row in UsageDay.objects.exclude(waits=b"").iterator(2_000):
        words = np.frombuffer(bytes(row.waits), dtype="<u4")
        row.waits_json = {"o": int(words[0]), "c": [int(n) for n in words[1:]]}
        row.save(update_fields=["waits_json"])


class Migration(migrations.Migration):
    dependencies = [("scheduler", "0011_step_journal")]

    operations = [
        migrations.RenameField("usageday", "waits", "waits_json"),
        migrations.AddField(
            "usageday",
            "waits",
            models.BinaryField(blank=True, default=b"", help_text="wait histogram"),
        ),
        migrations.RunPython(to_words, to_json),
        migrations.RemoveField("usageday", "waits_json"),
    ]

"""The served fuzz tier (`make bench ARGS=--fuzz`) in miniature: its harness still
starts the demo server, creates the jobs and sessions its aimed cases name, reaches
every operation and the stateful phase, and finds no server error or schema
violation in a few cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from tests.acceptance.fuzz.config import FuzzConfig
from tests.acceptance.fuzz.harness import run

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.mark.django_db
def test_a_small_served_fuzz_run_reaches_every_operation(tmp_path: Path) -> None:
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    operations = {f"{m.upper()} {path}" for path, ops in paths.items() for m in ops if m in METHODS}
    config = FuzzConfig(cases=60, scenarios=3, decoder_examples=3, hostile_per_shape=0)
    result = run(config, tmp_path)
    tallies = result.operations.values()
    assert result.alive_after
    assert set(result.operations) == operations
    assert all(tally.cases > 0 for tally in tallies)
    assert result.scenarios >= 1
    assert sum(tally.server_errors for tally in tallies) == 0
    assert sum(tally.violations for tally in tallies) == 0
    assert result.logged_server_errors == 0
    assert result.decoders

"""The cluster under faults, briefly: the chaos benchmark's run with a few of each fault.

`make bench ARGS=--chaos` runs it long (10k jobs, 100 leader kills); here a short run
on a scratch PostgreSQL database and a scratch Redis must still lose nothing, start
nothing twice, execute nothing twice at once, write no result twice, drop no
submission, elect a new leader after every kill, and replay to the same trace.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.acceptance.chaos.cluster import Cluster
from tests.acceptance.chaos.config import ChaosConfig
from tests.acceptance.chaos.harness import run

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_server() -> str:
    url = os.environ.get("DATABASE_URL", "")
    assert url.startswith(("postgres://", "postgresql://"))
    return url.rsplit("/", 1)[0] + "/postgres"


def test_a_short_chaos_run_loses_and_repeats_nothing(pg_server: str, tmp_path: Path) -> None:
    config = ChaosConfig(
        jobs=150,
        duration=25.0,
        backends=4,
        leader_kills=3,
        executor_kills=1,
        redis_restarts=1,
        pg_terminations=1,
        web_restarts=1,
        browser=False,
        submitters=4,
        drain_timeout=240.0,
        database=f"qdash_chaos_test_{os.getpid()}",
    )
    cluster_dir = tmp_path / "run"
    cluster_dir.mkdir()
    result = run(config, cluster_dir, pg_server)
    try:
        assert result.accepted > 100
        assert result.lost == []
        assert result.started_twice == []
        assert result.executed_twice == []
        assert result.written_twice == []
        assert result.dropped == 0
        assert result.failovers_missed == 0
        assert len(result.failovers_s) == result.faults["leader kill -9"] >= 1
        assert result.faults["executor kill -9 (mid-job)"] + result.faults["Redis restart"] >= 1
        assert result.parity.startswith("identical"), result.parity
    finally:
        Cluster(config, cluster_dir, pg_server).drop_database()

"""The cluster under faults (`make bench ARGS=--chaos`; briefly, test_chaos.py). The
harness measures and never asserts: its test asserts on what it measured.

It runs the cluster of `make cluster` (supervisord: two web processes on one
port, a scheduler leader and a standby, executor workers) on a scratch
PostgreSQL database and a scratch redis-server, and researchers' traffic through
the REST API: plain jobs on every backend, sessions created both ways (POST
/sessions, and a job's `start_session`) and then closed or left to expire, a
reservation window, and cancels. Meanwhile it injects faults at random points:
`kill -9` of the scheduler leader, `kill -9` of an executor in the middle of a
job, a Redis restart, `pg_terminate_backend` on the schedulers' and web
processes' connections, and web process restarts while a browser (Debian's
chromium) watches the dashboard. When the queue has drained it counts what must
be zero (jobs lost, started twice, executed twice at once, results written
twice), the failover times, what the submitters saw, the browser's reconnects,
and replays the event log with the memory engine (`manage.py replay --check`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.core import ROOT
from tests.acceptance.chaos.cluster import Cluster
from tests.acceptance.chaos.config import FINAL, ChaosConfig, ChaosResult
from tests.acceptance.chaos.faults import FaultLog, inject_faults
from tests.acceptance.chaos.traffic import BELL, Client, submit_jobs, trickle
from tests.acceptance.common import bell_params


def _measure(cluster: Cluster, client: Client, log: FaultLog, result: ChaosResult) -> None:
    accepted = set(client.accepted)
    result.accepted = len(accepted)
    rows = cluster.sql("SELECT uid, status, error FROM scheduler_job")
    status = {uid: (s, e) for uid, s, e in rows}
    for uid in accepted:
        if uid not in status or status[uid][0] not in FINAL:
            result.lost.append(uid)
        else:
            result.final[status[uid][0]] += 1
            if status[uid][1]:
                result.errors[status[uid][1]] += 1
    result.started_twice = [
        str(r[0])
        for r in cluster.sql(
            "SELECT job_id FROM scheduler_event WHERE kind = 'job_started' "
            "GROUP BY job_id HAVING count(*) > 1"
        )
    ]
    result.written_twice = [
        str(r[0])
        for r in cluster.sql(
            "SELECT job_id FROM scheduler_execution WHERE outcome = 'written' "
            "GROUP BY job_id HAVING count(*) > 1"
        )
    ]
    result.attempts = Counter(
        {
            (r[0] or "(worker killed)"): int(r[1])
            for r in cluster.sql(
                "SELECT outcome, count(*) FROM scheduler_execution GROUP BY outcome"
            )
        }
    )
    killed = dict(log.kills)
    runs: dict[int, list[tuple[float, float]]] = {}
    now = time.time()
    for job, worker, started, ended in cluster.sql(
        "SELECT job_id, worker, extract(epoch FROM started_at), extract(epoch FROM ended_at) "
        "FROM scheduler_execution"
    ):
        end = float(ended) if ended is not None else killed.get(worker, now)
        runs.setdefault(job, []).append((float(started), end))
    for job, spans in runs.items():
        spans.sort()
        if any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)):
            result.executed_twice.append(str(job))
    tags = cluster.sql(
        "SELECT count(*) FROM (SELECT tags FROM scheduler_job GROUP BY tags "
        "HAVING count(*) > 1) AS twice"
    )
    result.duplicates = int(tags[0][0])


def _browser_verdicts(data: dict[str, Any], log: FaultLog, result: ChaosResult) -> None:
    opened, closed, messages = data["opened"], data["closed"], data["messages"]
    for restart in log.web_restarts:
        close = next((c for c in closed if c >= restart - 1), None)
        if close is None or close > restart + 60:
            continue  # the browser's socket was on the other web process
        reopen = next((o for o in opened if o > close), None)
        if reopen is not None:
            result.reconnects_s.append(reopen - close)
    for kind, at in log.last.items():
        result.updates_afterinject_faults[kind] = sum(1 for m in messages if m > at)
    if data.get("errors"):
        result.browser_note = f"{len(data['errors'])} page errors, e.g. {data['errors'][0]}"


def run(config: ChaosConfig, workdir: Path, pg_server: str) -> ChaosResult:
    result = ChaosResult(config)
    began = time.monotonic()
    cluster = Cluster(config, workdir, pg_server)
    cluster.create_database()
    cluster.start_redis()
    browser: subprocess.Popen[bytes] | None = None
    stop_file = workdir / "browser.stop"
    stop_file.unlink(missing_ok=True)
    try:
        setup_path = workdir / "setup.json"
        child = [sys.executable, "-m", "tests.acceptance.chaos.child"]
        subprocess.run(
            [*child, "setup", "--backends", str(config.backends), "--result", str(setup_path)]
            + ["--job-seconds", str(config.job_seconds)],
            cwd=ROOT,
            env=cluster.env,
            check=True,
        )
        setup = json.loads(setup_path.read_text())
        BELL.update(bell_params())
        cluster.start()
        base = f"http://127.0.0.1:{cluster.port}"
        if config.browser and Path("/usr/bin/chromium").exists():
            browser = subprocess.Popen(
                [*child, "browser", "--url", base + "/", "--sessionid", setup["sessionid"]]
                + ["--stop", str(stop_file), "--result", str(workdir / "browser.json")],
                cwd=ROOT,
                env=cluster.env,
            )
        client = Client(base, setup["keys"], result)
        stop = threading.Event()
        log = FaultLog()
        faults = threading.Thread(target=inject_faults, args=(config, cluster, result, log, stop))
        faults.start()
        submit_jobs(config, client, setup["backends"], stop)
        trickle(client, setup["backends"], faults)
        faults.join()
        _drain(cluster, config.drain_timeout)
        time.sleep(3.0)  # the last updates reach the browser
        if browser is not None:
            stop_file.touch()
            browser.wait(120)
            recorded = workdir / "browser.json"
            if recorded.exists():
                _browser_verdicts(json.loads(recorded.read_text()), log, result)
            else:
                result.browser_note = f"the browser exited with {browser.returncode}, no record"
        _measure(cluster, client, log, result)
        replay = cluster.manage("replay", "--check", timeout=1800)
        lines = (replay.stdout + replay.stderr).strip().splitlines()
        result.parity = lines[-1] if lines else f"replay exited with {replay.returncode}"
    finally:
        if browser is not None and browser.poll() is None:
            stop_file.touch()
            with contextlib.suppress(subprocess.TimeoutExpired):
                browser.wait(30)
            browser.kill()
        cluster.stop()
    result.wall_s = time.monotonic() - began
    return result


def _drain(cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (left,) = cluster.sql(
            "SELECT count(*) FROM scheduler_job WHERE status IN ('Queued', 'Running')"
        )[0]
        inputs = cluster.sql("SELECT count(*) FROM scheduler_input")[0][0]
        if left == 0 and inputs == 0:
            return
        time.sleep(1.0)

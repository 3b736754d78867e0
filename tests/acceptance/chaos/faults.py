"""Faults at random points: kill -9 of the leader and of an executor mid-job, Redis
restarts, pg_terminate_backend on the cluster's connections, web restarts."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.acceptance.chaos.cluster import Cluster
from tests.acceptance.chaos.config import ChaosConfig, ChaosResult

APP_NAMES = ("qdash-scheduler", "qdash-scheduler-lock", "qdash-scheduler-listen", "qdash-web")


@dataclass
class FaultLog:
    kills: list[tuple[str, float]] = field(default_factory=list)  # (process name, wall time)
    web_restarts: list[float] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)  # fault kind -> last wall time


def _processes(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    rows = cluster.sql(
        "SELECT name, pid, leading_since, detail, extract(epoch FROM now() - heartbeat_at) "
        "FROM scheduler_process WHERE kind = %s",
        [kind],
    )
    return [
        {"name": r[0], "pid": r[1], "leading_since": r[2], "detail": r[3], "age": float(r[4])}
        for r in rows
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _kill_leader(cluster: Cluster, log: FaultLog, result: ChaosResult) -> None:
    """Wait for a leader that decided and a live standby; kill -9 the leader; time the
    next decision (the first step of whoever leads next)."""
    deadline = time.monotonic() + 120
    leader = None
    while time.monotonic() < deadline:
        rows = [r for r in _processes(cluster, "scheduler") if r["age"] < 3 and _alive(r["pid"])]
        leaders = [r for r in rows if r["detail"].get("first_step_at")]
        standbys = [r for r in rows if r["detail"].get("role") == "standby"]
        if leaders and standbys:
            leader = leaders[0]
            break
        time.sleep(0.2)
    if leader is None:
        return
    os.kill(leader["pid"], signal.SIGKILL)
    killed_at = time.time()
    log.kills.append((leader["name"], killed_at))
    result.faults["leader kill -9"] += 1
    while time.time() - killed_at < 60:
        for row in _processes(cluster, "scheduler"):
            first = row["detail"].get("first_step_at")
            if row["name"] != leader["name"] and first:
                at = datetime.fromisoformat(first).timestamp()
                if at > killed_at:
                    result.failovers_s.append(at - killed_at)
                    return
        time.sleep(0.05)
    result.failovers_missed += 1


def _kill_executor(cluster: Cluster, log: FaultLog, result: ChaosResult) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        busy = [
            r
            for r in _processes(cluster, "executor")
            if r["detail"].get("running") and r["age"] < 3 and _alive(r["pid"])
        ]
        if busy:
            os.kill(busy[0]["pid"], signal.SIGKILL)
            log.kills.append((busy[0]["name"], time.time()))
            result.faults["executor kill -9 (mid-job)"] += 1
            return
        time.sleep(0.05)


def _terminate_connections(cluster: Cluster, result: ChaosResult) -> None:
    rows = cluster.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = ANY(%s)",
        [cluster.config.database, list(APP_NAMES)],
    )
    result.faults["pg_terminate_backend (schedulers, web)"] += 1
    result.faults["  connections terminated"] += int(rows[0][0])


def inject_faults(
    config: ChaosConfig, cluster: Cluster, result: ChaosResult, log: FaultLog, stop: threading.Event
) -> None:
    rng = random.Random(config.seed + 1)
    plan = (
        ["leader"] * config.leader_kills
        + ["executor"] * config.executor_kills
        + ["redis"] * config.redis_restarts
        + ["pg"] * config.pg_terminations
        + ["web"] * config.web_restarts
    )
    rng.shuffle(plan)
    web = 0
    for kind in plan:
        if stop.is_set():
            break
        time.sleep(rng.uniform(0.5, 2.0))
        try:
            if kind == "leader":
                _kill_leader(cluster, log, result)
            elif kind == "executor":
                _kill_executor(cluster, log, result)
            elif kind == "redis":
                result.redis_down_s.append(cluster.restart_redis())
                result.faults["Redis restart"] += 1
            elif kind == "pg":
                _terminate_connections(cluster, result)
            else:
                log.web_restarts.append(time.time())
                cluster.ctl("restart", f"web:web-{web % 2}")
                web += 1
                result.faults["web process restart"] += 1
            log.last[kind] = time.time()
        except Exception as error:  # noqa: BLE001 - a fault that could not be injected
            result.note += f" {kind} fault failed: {error};"

"""The cluster under test: supervisord with deploy/supervisord.conf (two web processes,
schedulers, executor workers) on a scratch PostgreSQL database and a scratch Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.core import ROOT
from tests.acceptance.chaos.config import ChaosConfig
from tests.acceptance.common import free_port, wait_port


class Cluster:
    """supervisord with deploy/supervisord.conf, scratch PostgreSQL database and Redis."""

    def __init__(self, config: ChaosConfig, workdir: Path, pg_server: str) -> None:
        self.config = config
        self.workdir = workdir
        self.port = free_port()
        self.redis_port = free_port()
        self.pg_server = pg_server  # postgresql://.../postgres
        self.db_url = pg_server.rsplit("/", 1)[0] + f"/{config.database}"
        self.redis: subprocess.Popen[bytes] | None = None
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("QDASH_")},
            "DATABASE_URL": self.db_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "PORT": str(self.port),
            "QDASH_HOST": "127.0.0.1",
            "QDASH_HOME": str(ROOT),
            "QDASH_CLUSTER_DIR": str(workdir / "cluster"),
            "QDASH_EXECUTORS": "workers",
            "QDASH_WEB_PROCESSES": "2",
            "QDASH_SCHEDULERS": str(config.schedulers),
            "QDASH_EXECUTORS_PROCESSES": str(config.executors),
            "QDASH_EXECUTOR_CONCURRENCY": str(config.concurrency),
            "QDASH_EXECUTOR_MEMORY_MB": "1024",
            "QDASH_DEMO_TRAFFIC": "false",
            "QDASH_PROCESS_HEARTBEAT": "1",
            "QDASH_INTERACTIVE_TTL": "5",  # idle sessions expire within the run
            "QDASH_MAX_QUEUED_PER_USER": "1000000",
            "QDASH_MAX_OPEN_SESSIONS_PER_USER": "1000",
            "QDASH_API_REQUESTS_PER_MINUTE": "10000000",
            "QDASH_APPLY_WAIT": "0",
            "QDASH_DB_POOL_SIZE": "4",
            "SECRET_KEY": "chaos-benchmark-" + "x" * 40,
            "DEBUG": "false",
        }

    def create_database(self) -> None:
        self.drop_database()
        with psycopg.connect(self.pg_server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.config.database}"')

    def drop_database(self) -> None:
        name = self.config.database
        with psycopg.connect(self.pg_server, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    def start_redis(self) -> None:
        server = shutil.which("redis-server") or "redis-server"
        self.redis = subprocess.Popen(
            [server, "--bind", "127.0.0.1", "--port", str(self.redis_port)]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_port(self.redis_port, 20):
            raise RuntimeError("redis-server did not start")

    def restart_redis(self) -> float:
        """Stop Redis and start it again; how long it was away."""
        assert self.redis is not None
        began = time.monotonic()
        self.redis.terminate()
        self.redis.wait(10)
        time.sleep(1.0)
        self.start_redis()
        return time.monotonic() - began

    def start(self) -> None:
        (self.workdir / "cluster" / "logs").mkdir(parents=True, exist_ok=True)
        with (self.workdir / "supervisord.out").open("wb") as out:
            self.supervisor = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("supervisord")),
                    "-c",
                    "deploy/supervisord.conf",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if not wait_port(self.port, 120):
            raise RuntimeError("the cluster's web port did not open")
        self.wait_ready(180)

    def wait_ready(self, seconds: float) -> None:
        """Until every web process reports itself and a leader has decided: supervisord
        opens the port before any daphne listens on it."""
        webs = int(self.env["QDASH_WEB_PROCESSES"])
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error):
                (ready,) = self.sql(
                    "SELECT count(*) FILTER (WHERE kind = 'web') >= %s AND "
                    "count(*) FILTER (WHERE kind = 'scheduler' AND detail ? 'first_step_at') > 0 "
                    "FROM scheduler_process WHERE heartbeat_at > now() - interval '5 seconds'",
                    [webs],
                )[0]
                if ready:
                    return
            time.sleep(0.5)
        raise RuntimeError("the cluster did not become ready")

    def ctl(self, *args: str) -> str:
        ctl = str(Path(sys.executable).with_name("supervisorctl"))
        out = subprocess.run(
            [ctl, "-c", "deploy/supervisord.conf", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return out.stdout

    def stop(self) -> None:
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.send_signal(signal.SIGTERM)
            try:
                self.supervisor.wait(90)
            except subprocess.TimeoutExpired:
                self.supervisor.kill()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)

    def manage(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())

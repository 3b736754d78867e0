"""A serving process starts its decoding workers before the first submission needs them
(started by that submission, they held it, and every submission behind it, for one to
two seconds while the forkserver loaded Qiskit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.test_serve import ROOT, _free_port, _status

WORKERS = 2


def _env(tmp_path: Path) -> dict[str, str]:
    unset = ("QDASH_METRICS_TOKEN", "QDASH_PRODUCTION", "PROMETHEUS_MULTIPROC_DIR", "QDASH_ROLE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return env | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "QDASH_DECODE_WORKERS": str(WORKERS),
    }


def test_a_cluster_web_process_has_its_decoding_workers_once_it_loads(tmp_path: Path) -> None:
    probe = (
        "import qdash.asgi\n"
        "from scheduler import limits\n"
        "pool = limits.sandbox()._pool\n"
        "print(pool is not None and pool.active)\n"
    )
    env = _env(tmp_path) | {"QDASH_ROLE": "web"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "True"


def test_serve_starts_its_decoding_workers_without_a_submission(tmp_path: Path) -> None:
    port = _free_port()
    command = [sys.executable, "manage.py", "serve", "--no-scheduler", "--port", str(port)]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=_env(tmp_path), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while _status(f"http://127.0.0.1:{port}/healthz") != 200:
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        # The forkserver and its workers: nothing was submitted, nothing else forks.
        descendants: list[psutil.Process] = []
        while len(descendants) < 1 + WORKERS and time.monotonic() < deadline:
            time.sleep(0.3)
            descendants = psutil.Process(server.pid).children(recursive=True)
        assert len(descendants) >= 1 + WORKERS, (tmp_path / "server.log").read_text()
    finally:
        server.terminate()
        server.wait(30)
        log.close()

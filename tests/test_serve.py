"""`manage.py serve` behind a proxy: the client's address comes from X-Forwarded-For."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serve(tmp_path: Path, **extra_env: str) -> Iterator[str]:
    """`serve --no-scheduler` on a fresh SQLite database, without a metrics token."""
    port = _free_port()
    unset = ("QDASH_METRICS_TOKEN", "QDASH_PRODUCTION", "PROMETHEUS_MULTIPROC_DIR")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": ""}
    env |= extra_env
    command = [sys.executable, "manage.py", "serve", "--no-scheduler", "--port", str(port)]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _status(f"{base}/healthz") != 200:
            started = server.poll() is None and time.monotonic() < deadline
            assert started, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(30)
        log.close()


@pytest.fixture
def proxied_server(tmp_path: Path) -> Iterator[str]:
    """Behind a proxy on this machine: loopback is the trusted proxy."""
    with _serve(tmp_path, QDASH_BEHIND_PROXY="1") as base:
        yield base


@pytest.fixture
def direct_server(tmp_path: Path) -> Iterator[str]:
    """Configured behind a proxy elsewhere; reached on its port directly."""
    with _serve(tmp_path, QDASH_BEHIND_PROXY="1", QDASH_TRUSTED_PROXIES="10.99.0.1") as base:
        yield base


def _status(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10):
            return 200
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def test_behind_a_proxy_metrics_refuse_a_forwarded_remote_client(proxied_server: str) -> None:
    # The proxy itself connects from 127.0.0.1: without X-Forwarded-For, every client
    # of a local proxy would count as local and read /metrics without a token.
    remote = _status(f"{proxied_server}/metrics", **{"X-Forwarded-For": "203.0.113.7"})
    local = _status(f"{proxied_server}/metrics", **{"X-Forwarded-For": "127.0.0.1"})
    assert (remote, local) == (403, 200)


def test_a_client_reaching_the_port_directly_cannot_forge_its_address(
    direct_server: str,
) -> None:
    # Not from the trusted proxy: X-Forwarded-For is dropped, the connection's own
    # address counts, so a rotating header neither escapes the bad-key limit nor
    # passes for a local client at /metrics.
    statuses = [
        _status(
            f"{direct_server}/api/v1/backends",
            **{"X-Forwarded-For": f"198.51.100.{n}", "Authorization": f"Bearer qdash_bad{n}"},
        )
        for n in range(25)
    ]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    assert _status(f"{direct_server}/metrics", **{"X-Forwarded-For": "203.0.113.7"}) == 200


QUEUE_JOBS = """
from django.utils import timezone
from qiskit import QuantumCircuit
from scheduler import circuits
from tests.factories import BackendFactory, queue_job

BackendFactory(name="sim_a", num_qubits=30)
BackendFactory(name="sim_b")
heavy = QuantumCircuit(26)  # a 1 GB statevector that takes minutes: within every limit
for layer in range(300):  # entangling layers, so Aer cannot fuse the rotations away
    for qubit in range(26):
        heavy.ry(0.1 + layer + qubit, qubit)
    for qubit in range(layer % 2, 25, 2):
        heavy.cz(qubit, qubit + 1)
heavy.measure_all()
for uid in ("heavy1", "heavy2"):
    queue_job(uid, inst="h/g/p", at=timezone.now(), expected=0,
              params=circuits.sampler_params([heavy], 10))
queue_job("bell", inst="h/g/p", backend="sim_b", at=timezone.now(), expected=0,
          params=circuits.sampler_params([circuits.ghz(2)], 100))
"""


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _jobs(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The jobs' states, read straight from the server's SQLite file: a read takes
    milliseconds, so a short run between two looks is not missed."""
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    for _ in range(50):
        try:
            with sqlite3.connect(path, timeout=5) as db:
                rows = db.execute("SELECT uid, status, error FROM scheduler_job").fetchall()
            return {uid: (status, error or "-") for uid, status, error in rows}
        except sqlite3.OperationalError:  # the server holds the write lock for a moment
            time.sleep(0.05)
    raise AssertionError("the server's database stayed locked")


def _timed_healthz(base: str) -> float:
    started = time.monotonic()
    assert _status(f"{base}/healthz") == 200
    return time.monotonic() - started


def test_a_runaway_is_stopped_at_its_cap_and_sigterm_stops_the_server(tmp_path: Path) -> None:
    """The embedded default: an execution past its wall-clock cap fails and frees its
    backend while another backend completes a job and /healthz answers promptly; SIGTERM
    stops the server within seconds although a second long execution is running."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("QDASH_PRODUCTION", "REDIS_URL")}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "QDASH_EXECUTION_SECONDS": "4"}
    _manage(env, "migrate", "-v", "0")
    _manage(env, "shell", "-c", QUEUE_JOBS)
    log = (tmp_path / "server.log").open("wb")
    command = [sys.executable, "manage.py", "serve", "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _status(f"{base}/healthz") != 200:
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        latencies = []
        while _jobs(env)["heavy2"][0] != "Running":
            assert time.monotonic() < deadline, _jobs(env)
            latencies.append(_timed_healthz(base))
            time.sleep(0.2)
        jobs = _jobs(env)
        assert jobs["heavy1"] == ("Failed", "execution_limit_exceeded")
        assert jobs["bell"] == ("Completed", "-")
        assert max(latencies) < 1.0, latencies

        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        assert time.monotonic() - stopping < 10
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)
        log.close()
    assert _jobs(env)["heavy2"] == ("Running", "-")  # left for the next start, not failed

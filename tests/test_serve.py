"""`manage.py serve` behind a proxy: the client's address comes from X-Forwarded-For."""

from __future__ import annotations

import os
import socket
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


@pytest.fixture
def proxied_server(tmp_path: Path) -> Iterator[str]:
    """`serve --no-scheduler` with QDASH_BEHIND_PROXY on, without a metrics token."""
    port = _free_port()
    unset = ("QDASH_METRICS_TOKEN", "QDASH_PRODUCTION", "PROMETHEUS_MULTIPROC_DIR")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": ""}
    env |= {"QDASH_BEHIND_PROXY": "1"}
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

"""What the cluster benchmarks need around them: PostgreSQL named in DATABASE_URL, and
a Redis server of their own for the channel layer of several processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

from .live import _free_port, _stop, _wait_port


def missing_services(target: str = "the targets are") -> str | None:
    """Why a cluster benchmark cannot run here (None: it can)."""
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return f"set DATABASE_URL to a PostgreSQL database: {target} for it"
    if shutil.which("redis-server") is None:
        return "needs redis-server for the channel layer of several processes"
    return None


@contextlib.contextmanager
def scratch_redis() -> Iterator[str]:
    """A redis-server on a free port, without persistence, for the time of the block:
    its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1"]
        + ["--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, server, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(server)

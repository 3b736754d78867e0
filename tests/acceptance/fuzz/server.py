"""The server under test: `manage.py serve --demo` on a scratch SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.core import ROOT
from tests.acceptance.fuzz.config import LIMITS
from tests.acceptance.fuzz.hostile import CAPS


class Server:
    """`manage.py serve --demo` on a scratch SQLite database, with the raised limits."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.database = database = workdir / "fuzz.sqlite3"
        for stale in workdir.glob("fuzz.sqlite3*"):
            stale.unlink()
        self.log_path = workdir / "server.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{database}",
            "REDIS_URL": "",
            "QDASH_PRODUCTION": "",
            "DEBUG": "",
            **LIMITS,
            **CAPS,  # hostile programs run under small execution caps
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--demo", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log_path}")
            if self.alive():
                return
            time.sleep(0.5)
        raise RuntimeError(f"the server did not answer in 180 s; see {self.log_path}")

    def alive(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.base}/healthz", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def api_key(self, user: str) -> str:
        return str(json.loads(self.manage("issue_token", "--user", user, "--json"))["token"])

    def manage(self, *args: str) -> str:
        """Another `manage.py` command on the server's database."""
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def logged_server_errors(self) -> int:
        return self.log_path.read_text(errors="replace").count("API error (request")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

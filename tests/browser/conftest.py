"""Browser tests drive Debian's chromium with Playwright against `serve --demo`.

Without chromium or Playwright the tests are skipped, except under CI=true,
where that is a failure. Screenshots go to artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

try:
    from playwright import sync_api as playwright
except ImportError:  # pragma: no cover - the dev dependencies include it
    playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module", autouse=True)
def _browser_available() -> None:
    missing = [
        what
        for what, ok in (("playwright", playwright is not None), (str(CHROMIUM), CHROMIUM.exists()))
        if not ok
    ]
    if missing:
        message = f"browser tests need {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`manage.py serve --demo` on a scratch SQLite database, one per test module."""
    port = _free_port()
    db = tmp_path_factory.mktemp("browser") / "db.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "REDIS_URL": ""}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("serve did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def log_in(page: playwright.Page, server: str, username: str, password: str) -> None:
    """Log in through the login form; lands on the dashboard."""
    page.goto(server + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")

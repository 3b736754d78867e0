"""The dashboard in a real browser (Debian chromium via Playwright), against `serve --demo`.

Needs Debian's chromium (the test command installs it); without it the test is
skipped, except under CI=true, where that is a failure. Screenshots go to artifacts/.
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
    """`manage.py serve --demo` on a scratch SQLite database."""
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


def test_an_operator_watches_the_dashboard_move(server: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600}, timezone_id="Asia/Tokyo")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server + "/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "admin")
        page.click("button[type=submit]")
        page.wait_for_url(server + "/")
        page.wait_for_selector("#live-status.on", timeout=15_000)
        page.evaluate(
            "window.qdashMessages = 0;"
            "document.addEventListener('htmx:wsAfterMessage', () => window.qdashMessages++);"
        )
        # Demo traffic submits jobs: fragments arrive over the websocket without a reload.
        page.wait_for_function("window.qdashMessages > 0", timeout=30_000)
        page.wait_for_selector("#depth-sim_lima .main-svg", timeout=15_000)
        page.wait_for_selector("#session-timeline .main-svg", timeout=15_000)
        assert page.locator("#backend-sim_kyiv").is_visible()
        assert page.locator("#job-table tbody tr").count() > 0
        page.screenshot(path=str(ARTIFACTS / "browser_dashboard.png"), full_page=True)
        assert errors == []
        browser.close()

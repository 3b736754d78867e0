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
from typing import Any

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


START_SECONDS = 120


class Serve:
    """`manage.py serve --demo` on a scratch SQLite database; stop and start it again."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}"}
        self.env["REDIS_URL"] = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *options: str) -> None:
        """Start `serve --demo` (with `options`, such as `--no-scheduler`)."""
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--demo", "--port", str(self.port), *options],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Starting loads Qiskit and the demo: seconds on a quiet machine, longer on a busy one.
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()  # never leave a server behind that a later test would not know of
        raise AssertionError(f"serve did not start within {START_SECONDS} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)  # daphne gives open websockets time to close
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def manage(self, *args: str) -> str:
        """Another `manage.py` command on the same database (the server may be down)."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One demo server per test module."""
    serve = Serve(tmp_path_factory.mktemp("browser"))
    serve.start()
    try:
        yield serve.url
    finally:
        serve.stop()


@pytest.fixture
def restartable(tmp_path: Path, browser: playwright.Browser) -> Iterator[Serve]:
    """A demo server of the test's own, started; the test may stop and start it."""
    serve = Serve(tmp_path)
    serve.start()
    try:
        yield serve
    finally:
        for context in browser.contexts:  # its pages first, or their sockets hold it open
            context.close()
        serve.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright.Browser]:
    """Debian's chromium, headless, shared by a module's tests (each opens its own page)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _close_pages(browser: playwright.Browser) -> Iterator[None]:
    """Each test's pages close after it, so their websockets do not load the next test."""
    yield
    for context in browser.contexts:
        context.close()


def logged_in(
    browser: playwright.Browser,
    server: str,
    username: str,
    *,
    size: tuple[int, int] = (1280, 800),
    **options: Any,
) -> tuple[playwright.Page, list[str]]:
    """A new page of `size`, logged in as `username` (password: the same) on the dashboard,
    and the list its errors go to (`page_errors`)."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]}, **options)
    errors = page_errors(page)
    log_in(page, server, username, username)
    return page, errors


def page_errors(page: playwright.Page) -> list[str]:
    """Uncaught exceptions and console errors of `page`, as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    return errors


def log_in(page: playwright.Page, server: str, username: str, password: str) -> None:
    """Log in through the login form; lands on the dashboard."""
    page.goto(server + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")

"""Every page works under the Content-Security-Policy (scripts only from qdash itself)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS, logged_in, playwright

# Records what the policy blocks, before any of the page's own code runs.
WATCH_VIOLATIONS = """
window.__blocked = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__blocked.push(event.violatedDirective + " " + event.blockedURI);
});
"""

# Each page, and what shows that its scripts ran under the policy.
PAGES = [
    ("/", "#flow-sim_lima .main-svg"),
    ("/submit", "select[name=backend]"),
    ("/backends/sim_fez", "#coupling-map .main-svg"),
    ("/admin/scheduler/backend/add/", "#backend_form"),
    ("/fair-share", "main"),
    ("/what-if", "main"),
    ("/cluster", "main"),
    ("/account", "main"),
    ("/admin/", "#content"),
    ("/admin/scheduler/reservation/add/", "#reservation_form"),
    ("/api/v1/docs", "#swagger-ui .info"),
]


@pytest.mark.parametrize(("path", "ready"), PAGES)
def test_the_page_works_under_the_policy(
    browser: playwright.Browser, server: str, path: str, ready: str
) -> None:
    page, errors = logged_in(browser, server, "admin")
    page.add_init_script(WATCH_VIOLATIONS)
    response = page.goto(server + path)
    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    page.wait_for_selector(ready, timeout=15_000)
    if path == "/":
        page.wait_for_selector("#live-status.on", timeout=15_000)  # the websocket connects
    page.wait_for_timeout(500)
    assert page.evaluate("window.__blocked") == []
    assert errors == []


def test_the_job_and_session_pages_work_under_the_policy(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "admin")
    page.add_init_script(WATCH_VIOLATIONS)
    page.goto(server + "/")
    page.wait_for_selector("#job-table a[href*='/jobs/']", timeout=30_000)
    page.click("#job-table a[href*='/jobs/']")
    page.wait_for_selector("main", timeout=15_000)
    page.wait_for_selector("#live-status.on", timeout=15_000)
    session_link = page.query_selector("a[href*='/sessions/']")
    if session_link is not None:
        session_link.click()
        page.wait_for_selector("#session-timeline", timeout=15_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "browser_csp_last_page.png"), full_page=True)
    assert page.evaluate("window.__blocked") == []
    assert errors == []

"""The dashboard in a real browser (Debian chromium via Playwright), against `serve --demo`."""

from __future__ import annotations

from tests.browser.conftest import ARGS, ARTIFACTS, CHROMIUM, log_in, playwright


def test_an_operator_watches_the_dashboard_move(server: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600}, timezone_id="Asia/Tokyo")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, server, "admin", "admin")
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

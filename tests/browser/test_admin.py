"""The admin in a real browser: the reservation pages render with no console error."""

from __future__ import annotations

from tests.browser.conftest import ARTIFACTS, logged_in, playwright


def test_an_operator_opens_the_reservation_pages_without_console_errors(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "admin")
    page.goto(f"{server}/admin/scheduler/reservation/")
    page.wait_for_selector("#result_list")
    assert "partner/lab/alpha" in page.inner_text("#result_list")  # the demo's windows
    page.goto(f"{server}/admin/scheduler/reservation/add/")
    page.wait_for_selector("form#reservation_form")
    page.goto(f"{server}/admin/auditlog/logentry/")
    page.wait_for_selector("#content")
    page.screenshot(path=str(ARTIFACTS / "browser_admin_reservation.png"), full_page=True)
    icon = page.request.get(f"{server}/favicon.ico")
    assert icon.status == 200
    assert errors == []

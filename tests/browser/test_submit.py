"""A researcher submits a circuit in a real browser and watches it complete; phone widths."""

from __future__ import annotations

from tests.browser.conftest import ARTIFACTS, logged_in, playwright


def test_a_researcher_submits_the_bell_example_and_sees_its_counts(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "alice", size=(1280, 900))
    page.click("nav.top >> text=Submit")
    page.wait_for_url(server + "/submit")
    assert page.locator("#id_shots").is_visible()
    assert not page.locator("#id_observables").is_visible()  # an estimator field
    page.select_option("#id_backend", "sim_lima")
    page.select_option("#id_instance", "ibm-q/research/qec")
    page.click("button[data-example=bell]")
    assert "cx q[0], q[1];" in page.input_value("#id_circuit")
    page.fill("#id_shots", "1000")
    page.screenshot(path=str(ARTIFACTS / "submit.png"), full_page=True)
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(server + "/jobs/q*")
    # Demo backends model QPU time, and demo traffic may be queued ahead.
    try:
        page.wait_for_selector("#job-status .status.completed", timeout=120_000)
    except playwright.TimeoutError:
        page.screenshot(path=str(ARTIFACTS / "job_timeout_browser.png"), full_page=True)
        raise AssertionError(page.locator("main").inner_text()) from None
    page.wait_for_selector("#result-chart .main-svg", timeout=15_000)
    assert page.locator("#job-status").inner_text().count("ibm-q/research/qec") == 1
    page.screenshot(path=str(ARTIFACTS / "job_completed_browser.png"), full_page=True)
    assert errors == []


def test_the_dashboard_fits_a_phone(browser: playwright.Browser, server: str) -> None:
    page, errors = logged_in(browser, server, "alice", size=(390, 844), is_mobile=True)
    page.wait_for_selector("#flow-sim_lima .main-svg", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard_phone.png"), full_page=True)
    # Wide tables scroll inside their box; the page itself does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []

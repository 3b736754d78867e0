"""A researcher submits a circuit in a real browser, watches it complete and downloads
its results; the account page's notebook snippet; phone widths."""

from __future__ import annotations

import json
from pathlib import Path

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

    # The results arrived with the live update: counts per register, and the downloads.
    counts = page.locator("#job-results table.result-counts")
    assert "register c: 1000 shots of 2 bits" in counts.locator("caption").inner_text()
    rows = dict(
        row.split("\t") for row in counts.locator("tbody").inner_text().strip().splitlines()
    )
    assert set(rows) == {"00", "11"} and sum(int(n) for n in rows.values()) == 1000
    with page.expect_download() as bitstrings:
        page.click("text=every shot's bitstring as JSON")
    data = json.loads(Path(bitstrings.value.path()).read_text())
    shots = data["pubs"][0]["registers"]["c"]["bitstrings"]
    assert len(shots) == 1000 and {b: shots.count(b) for b in set(shots)} == {
        key: int(n) for key, n in rows.items()
    }
    with page.expect_download() as raw:
        page.click("text=the result as the client's JSON")
    assert raw.value.suggested_filename.endswith("-result.json")
    assert json.loads(Path(raw.value.path()).read_text())["__type__"] == "PrimitiveResult"
    page.locator("#job-results").screenshot(path=str(ARTIFACTS / "job_results_browser.png"))
    page.reload()  # the same results on a fresh load
    page.wait_for_selector("#result-chart .main-svg", timeout=15_000)
    assert page.locator("#job-results table.result-counts").count() == 1
    assert errors == []


def test_the_account_snippet_gets_its_key_from_a_button(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "alice")
    page.goto(server + "/account")
    assert 'token="YOUR_API_KEY"' in page.inner_text("#snippet-save")
    page.click("#snippet-key")
    page.wait_for_function(
        "() => document.getElementById('snippet-save').textContent.includes('qdash_')"
    )
    save = page.inner_text("#snippet-save")
    key = save.split('token="')[1].split('"')[0]
    assert f"{server}/experimental/api/v1" in save
    assert key in page.inner_text("#api-keys")  # shown beside the list, which now has it
    assert page.locator("#api-keys td", has_text="notebook").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "account_snippet_browser.png"), full_page=True)
    page.reload()
    assert key not in page.content()
    assert errors == []


def test_the_dashboard_fits_a_phone(browser: playwright.Browser, server: str) -> None:
    page, errors = logged_in(browser, server, "alice", size=(390, 844), is_mobile=True)
    page.wait_for_selector("#flow-sim_lima .main-svg", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard_phone.png"), full_page=True)
    # Wide tables scroll inside their box; the page itself does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []

"""The usage page in a real browser (Debian chromium via Playwright), against `serve
--demo`: an operator's stacked charts are drawn, the CSV link downloads the rows the
table shows, and a researcher sees only their own instances."""

from __future__ import annotations

import csv
import io

from tests.browser.conftest import ARTIFACTS, logged_in, playwright

ROWS = "#usage-table tbody tr"


def _rows_with_usage(page: playwright.Page, server: str) -> None:
    """Reload until the demo traffic has finished some jobs (the table has rows)."""
    for _ in range(60):
        page.goto(server + "/usage")
        if page.locator(f"{ROWS} td.numbers").count():
            return
        page.wait_for_timeout(1_000)
    raise AssertionError("no usage after a minute of demo traffic")


def test_an_operator_sees_stacked_charts_and_downloads_the_same_rows(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "admin", size=(1400, 1200), accept_downloads=True)
    page.click("nav >> text=Usage")
    page.wait_for_url(server + "/usage")
    _rows_with_usage(page, server)
    for chart in ("usage-run", "usage-hold", "usage-jobs"):
        page.wait_for_selector(f"#{chart} .main-svg")
    bars = page.locator("#usage-jobs .trace.bars")
    assert bars.count() >= 1  # one trace per instance, stacked
    table = [
        [cell.inner_text() for cell in row.locator("td").all()] for row in page.locator(ROWS).all()
    ]
    page.screenshot(path=str(ARTIFACTS / "browser_usage.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#usage-csv")
    text = download.value.path().read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["period", "instance"]
    assert len(rows) - 1 >= len(table)  # the traffic may have finished more meanwhile
    by_key = {(r[0], r[1]): r for r in rows[1:]}
    for cells in table:
        row = by_key[(cells[0], cells[1])]
        assert int(row[7]) >= int(cells[7])  # jobs: never fewer a moment later
    assert download.value.suggested_filename.endswith(".csv")
    assert errors == []


def test_a_researcher_sees_only_their_own_instances(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "bob", size=(1400, 1000))
    page.goto(server + "/usage")
    cells = [row.locator("td").all_inner_texts() for row in page.locator(ROWS).all()]
    instances = {row[1] for row in cells if len(row) > 1}
    assert instances <= {"ibm-q/research/chem"}
    options = page.locator("select[name=instance] option").all_inner_texts()
    assert options == ["every instance", "ibm-q/research/chem"]
    answer = page.goto(server + "/usage?instance=partner/lab/alpha")
    assert answer is not None and answer.status == 404
    assert [e for e in errors if "404" not in e] == []

"""The fair-share page's allocation bars in a real browser (Debian chromium via Playwright),
against `serve --demo`: a researcher sees each allocated node's usage, names only above
their own instances, and the bars follow an operator's change without a reload."""

from __future__ import annotations

from tests.browser.conftest import ARTIFACTS, Serve, logged_in, playwright

BARS = "#allocation-bars tbody tr"


def filled(page: playwright.Page, node: str) -> float:
    """How much of a node's bar is filled, as the browser lays it out (0 to 1).

    Measured once the bar is laid out: the demo traffic re-renders the page, and a bar
    caught mid-swap has no width yet."""
    handle = page.wait_for_function(
        """node => {
            const span = document.querySelector(`tr[data-node="${node}"] .usage-bar span`);
            const bar = span && span.parentElement.getBoundingClientRect().width;
            return bar > 0 ? {ratio: span.getBoundingClientRect().width / bar} : null;
        }""",
        arg=node,
        timeout=10_000,
    )
    return float(handle.json_value()["ratio"])


def test_a_researcher_sees_a_usage_bar_per_allocated_node(
    browser: playwright.Browser, restartable: Serve
) -> None:
    restartable.manage("allocation", "set", "ibm-q/research", "--seconds", "0")
    restartable.manage("allocation", "set", "partner", "--seconds", "864000", "--enforce", "safe")
    page, errors = logged_in(browser, restartable.url, "alice", size=(1400, 1000))

    page.click("nav >> text=Fair share")
    page.wait_for_selector(BARS)
    assert page.locator(BARS).count() == 2
    research = page.locator('tr[data-node="ibm-q/research"]')
    assert "exhausted" in (research.get_attribute("class") or "")
    assert filled(page, "ibm-q/research") == 1  # 0 s allocated: used up at once
    assert "of 0 s" in research.inner_text() and "never (0 s allocated)" in research.inner_text()
    other = page.locator('tr[data-node="another hub"]')  # partner: not alice's
    assert "safe" in other.inner_text() and "left" in other.inner_text()
    assert filled(page, "another hub") < 0.5
    assert page.get_attribute('tr[data-node="another hub"] .usage-bar', "aria-valuemax") == "864000"
    page.screenshot(path=str(ARTIFACTS / "browser_fair_share.png"), full_page=True)

    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    restartable.manage("allocation", "remove", "ibm-q/research")
    page.wait_for_function(
        "() => document.querySelectorAll('#allocation-bars tbody tr').length === 1",
        timeout=20_000,
    )  # the page re-renders with the demo traffic's next change
    assert page.evaluate("window.loadedOnce === true")
    assert errors == []

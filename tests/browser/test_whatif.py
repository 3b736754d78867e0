"""The what-if page in a real browser (Debian chromium via Playwright), against `serve --demo`:
an operator previews a reservation from the admin and reads both futures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.browser.conftest import logged_in, page_errors, playwright

ROWS = ["without the changes", "with the changes"]
# Per chart: the timeline rows that have bars, and the rows that show an exclusive window.
CHART = """name => {
  const el = document.getElementById('whatif-timeline-' + name);
  const rows = Array.from(new Set(el.data.flatMap(t => Array.from(t.y))));
  const order = el.layout.yaxis.categoryarray;
  const windows = (el.layout.shapes || []).filter(s => s.line.width > 0)
    .map(s => order[Math.round((s.y0 + s.y1) / 2)]);
  return {rows: rows.sort(), windows, range: el.layout.xaxis.range};
}"""


def test_an_operator_previews_an_exclusive_window_from_the_admin(
    browser: playwright.Browser, server: str, tmp_path: Path
) -> None:
    page, _ = logged_in(browser, server, "admin", size=(1400, 1000))  # the admin is not tested here
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=10)
    end = start + timedelta(hours=1)
    page.goto(server + "/admin/scheduler/reservation/add/")
    page.select_option("#id_backend", label="sim_fez")
    page.select_option("#id_instance", label="ibm-q/open/main")
    page.fill("#id_start_0", f"{start:%Y-%m-%d}")
    page.fill("#id_start_1", f"{start:%H:%M:%S}")
    page.fill("#id_end_0", f"{end:%Y-%m-%d}")
    page.fill("#id_end_1", f"{end:%H:%M:%S}")
    page.check("#id_exclusive")
    with page.context.expect_page() as opened:
        page.click("input[name=_whatif]")
    whatif = opened.value
    whatif.wait_for_load_state()  # a new tab reloaded before it is attached fails in Chromium
    errors = page_errors(whatif)
    whatif.reload()  # watched from its first request
    assert "Add an exclusive window for ibm-q/open/main on sim_fez" in whatif.inner_text(
        "#whatif-changes"
    )

    # Assume research/chem keeps sending jobs to sim_fez, then read both futures.
    whatif.click("#add-load summary")
    whatif.select_option("#id_load-backend", "sim_fez")
    whatif.select_option("#id_load-instance", "ibm-q/research/chem")
    whatif.fill("#id_load-per_hour", "120")
    whatif.click("#add-load button[type=submit]")
    whatif.wait_for_selector("#whatif-changes li:nth-child(2)")
    whatif.wait_for_selector("#whatif-timeline-sim_fez .main-svg", timeout=30_000)
    for name in ("sim_fez", "sim_kyiv", "sim_lima"):
        whatif.wait_for_selector(f"#whatif-timeline-{name} .main-svg")

    fez = whatif.evaluate(CHART, "sim_fez")
    assert fez["rows"] == sorted(ROWS)  # both futures drawn
    assert fez["windows"] == ["with the changes"]  # the new window only in its future
    kyiv = whatif.evaluate(CHART, "sim_kyiv")
    assert kyiv["range"] == fez["range"]  # one time axis for every backend
    honesty = whatif.inner_text("#whatif-honesty")
    assert "from known jobs" in honesty and "from the synthetic load" in honesty
    chem = whatif.locator('#whatif-instances tr[data-node="ibm-q/research/chem"]')
    assert chem.count() >= 1
    # The progress indicator: hidden, and shown half a second into a run (htmx marks it).
    progress = whatif.evaluate(
        """() => {
          const el = document.getElementById('whatif-progress');
          const idle = getComputedStyle(el).opacity;
          el.classList.add('htmx-request');
          const busy = getComputedStyle(el);
          const answer = [idle, busy.transitionDelay];
          el.classList.remove('htmx-request');
          return answer;
        }"""
    )
    assert progress == ["0", "0.5s"]

    shot = tmp_path / "whatif.png"
    whatif.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    assert errors == []

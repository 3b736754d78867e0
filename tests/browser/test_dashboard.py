"""The dashboard in a real browser (Debian chromium via Playwright), against `serve --demo`."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.browser.conftest import (
    ARTIFACTS,
    Serve,
    logged_in,
    playwright,
)

# Queue-flow points on the page: the depth traces (0-2) of every backend's chart.
POINTS = """() => Array.from(document.querySelectorAll('.flow-chart')).reduce(
  (n, el) => n + (el.data ? el.data.slice(0, 3).reduce((m, t) => m + t.x.length, 0) : 0), 0)"""


def test_an_operator_watches_the_queues_move_without_reloading(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "admin", timezone_id="Asia/Tokyo")
    page.wait_for_selector("#live-status.on", timeout=15_000)
    page.wait_for_selector("#flow-sim_lima .main-svg", timeout=15_000)
    page.wait_for_selector("#session-timeline .main-svg", timeout=15_000)
    page.evaluate("window.notReloaded = true")
    points = page.evaluate(POINTS)
    cards = page.inner_text("#backend-cards")

    # Demo traffic submits and runs jobs: the charts grow and the cards change.
    # Predicates are functions: an expression string would be eval'd, which the CSP forbids.
    page.wait_for_function(f"seen => ({POINTS})() > seen", arg=points, timeout=60_000)
    page.wait_for_function(
        "text => document.getElementById('backend-cards').innerText !== text",
        arg=cards,
        timeout=60_000,
    )
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#job-table tbody tr").count() > 0

    # Times show in the viewer's zone (the browser's, Tokyo here), not the server's.
    stamp = page.locator("#job-table time.local").first
    at = datetime.fromisoformat(stamp.get_attribute("datetime") or "")
    tokyo = at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{tokyo.hour % 12 or 12}:{tokyo.minute:02d}:{tokyo.second:02d}" in stamp.inner_text()

    # Lane colours: the Okabe-Ito palette, the same in the cards and the charts.
    lanes = page.evaluate(
        "() => document.getElementById('flow-sim_lima').data.slice(0, 3)"
        ".map(t => [t.name, t.line.color])"
    )
    assert lanes == [
        ["reservation", "#E69F00"],
        ["session", "#0072B2"],
        ["fair-share", "#009E73"],
    ]
    page.screenshot(path=str(ARTIFACTS / "browser_dashboard.png"), full_page=True)
    assert errors == []


def test_a_chart_open_all_day_keeps_a_bounded_number_of_points(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "admin")
    page.wait_for_selector("#flow-sim_lima .main-svg", timeout=15_000)
    limit = json.loads(page.inner_text("#chart-data"))["maxPoints"]
    # A day of updates, fed through the page's own websocket message handler.
    page.evaluate(
        """limit => {
          const start = Date.now();
          for (let i = 0; i < limit * 3; i++) {
            const at = new Date(start + i * 60000);
            const bin = new Date(Math.floor(at / 60000) * 60000);
            const flow = {bin: bin.toISOString(),
                          entered: {reservation: 0, session: 1, fair_share: 2},
                          started: {reservation: 0, session: 1, fair_share: 1}};
            const point = {at: at.toISOString(), reservation: 0, session: i % 3,
                           fair_share: i % 5, flow};
            const message = JSON.stringify({type: "depth", points: {sim_lima: point}});
            document.dispatchEvent(new CustomEvent("htmx:wsBeforeMessage",
                                                   {detail: {message}, cancelable: true}));
          }
        }""",
        limit,
    )
    lengths = page.evaluate(
        "() => document.getElementById('flow-sim_lima').data.map(t => t.x.length)"
    )
    span = json.loads(page.inner_text("#chart-data"))
    bins = round(span["span"] / span["bin"]) + 1
    assert lengths[:3] == [limit] * 3  # depth: the newest maxPoints
    assert lengths[3:] == [bins] * 6  # flow bars: the newest span's worth of bins
    assert errors == []


def test_the_page_reconnects_after_a_server_restart_and_catches_up(
    browser: playwright.Browser, restartable: Serve
) -> None:
    page, errors = logged_in(browser, restartable.url, "admin")
    page.wait_for_selector("#live-status.on", timeout=15_000)
    page.evaluate("window.notReloaded = true")
    assert errors == []

    restartable.stop()
    page.wait_for_selector("#live-status:not(.on)", timeout=15_000)
    # While the server is down, a job is submitted straight into the database.
    uid = restartable.manage(
        "shell",
        "--verbosity=0",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from scheduler import circuits, models\n"
        "from scheduler.submission import jobs_submit\n"
        "submitted = jobs_submit(owner=get_user_model().objects.get(username='alice'),"
        " backend=models.Backend.objects.get(name='sim_lima'),"
        " instance=models.Instance.objects.get(path='ibm-q/open/main'),"
        " program_id='sampler', params=circuits.sampler_params([circuits.ghz(2)], 100))\n"
        "print(submitted.job.uid)",
    ).strip()
    assert page.locator(f"#job-table a[href$='{uid}']").count() == 0

    restartable.start()
    # htmx retries with full-jitter backoff, at most 64 s apart.
    page.wait_for_selector("#live-status.on", timeout=90_000)
    down = len(errors)
    page.wait_for_selector(f"#job-table a[href$='{uid}']", timeout=15_000)
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=str(ARTIFACTS / "browser_reconnected.png"), full_page=True)
    # While the server was down the browser logged each failed attempt (and htmx its
    # error event); since the reconnect, nothing.
    expected = ("WebSocket connection", "console: [object Event]")
    assert all(e.startswith("console:") and any(x in e for x in expected) for e in errors)
    assert errors[down:] == []


# Opens a batch and a dedicated session of alice's on sim_lima, each with a job; prints both ids.
OPEN_BOTH = """
from django.contrib.auth import get_user_model
from scheduler import circuits, models
from scheduler.submission import jobs_submit, sessions_create
alice = get_user_model().objects.get(username="alice")
lima = models.Backend.objects.get(name="sim_lima")
node = models.Instance.objects.filter(members=alice).order_by("path").first()
params = circuits.sampler_params([circuits.ghz(2)], 100)
for mode in ("batch", "dedicated"):
    session, _ = sessions_create(owner=alice, backend=lima, instance=node, mode=mode)
    jobs_submit(owner=alice, backend=lima, instance=node, program_id="sampler", params=params,
                session_id=session.uid)
    print(session.uid)
"""

# Every bar of the session timeline: its row and its fill pattern.
TIMELINE_BARS = """() => document.getElementById('session-timeline').data
  .filter(t => t.type === 'bar')
  .flatMap(t => t.y.map((y, i) => [y, t.marker.pattern.shape[i]]))"""


def test_the_session_timeline_tells_a_batch_from_a_dedicated_session(
    browser: playwright.Browser, restartable: Serve
) -> None:
    batch, dedicated = restartable.manage("shell", "--no-imports", "-c", OPEN_BOTH).split()
    page, errors = logged_in(browser, restartable.url, "admin")
    page.wait_for_selector("#session-timeline .main-svg", timeout=15_000)
    rows = {"batch": f"sim_lima · batch {batch[:8]}", "dedicated": f"sim_lima · {dedicated[:8]}"}
    page.wait_for_function(
        f"rows => {{ const ys = ({TIMELINE_BARS})().map(b => b[0]);"
        " return rows.every(r => ys.includes(r)); }",
        arg=list(rows.values()),
        timeout=30_000,
    )

    bars = page.evaluate(TIMELINE_BARS)

    assert {shape for row, shape in bars if row == rows["batch"]} == {"/"}
    assert {shape for row, shape in bars if row == rows["dedicated"]} == {""}
    assert errors == []

"""A job newer than the scheduler's plan says its position is being computed, in a
real browser; once a leader has planned it, its page says where it stands."""

from __future__ import annotations

from tests.browser.conftest import ARTIFACTS, Serve, logged_in, playwright

SUBMIT = (
    "from django.contrib.auth import get_user_model\n"
    "from scheduler import circuits, models\n"
    "from scheduler.submission import jobs_submit\n"
    "submitted = jobs_submit(owner=get_user_model().objects.get(username='alice'),"
    " backend=models.Backend.objects.get(name='sim_lima'),"
    " instance=models.Instance.objects.get(path='ibm-q/open/main'),"
    " program_id='sampler', params=circuits.sampler_params([circuits.ghz(2)], 100))\n"
    "print(submitted.job.uid)"
)


def test_a_job_newer_than_the_plan_shows_its_position_being_computed(
    browser: playwright.Browser, restartable: Serve
) -> None:
    restartable.stop()
    # Stored as a web process stores it; no scheduler runs to apply and plan it.
    uid = restartable.manage("shell", "--verbosity=0", "-c", SUBMIT).strip()
    restartable.start("--no-scheduler")
    page, errors = logged_in(browser, restartable.url, "alice")
    page.goto(f"{restartable.url}/jobs/{uid}")
    position = page.locator("#job-position")
    assert position.get_attribute("data-state") == "being_computed"
    assert position.inner_text().startswith("position being computed")
    assert page.locator("#job-estimated-start").inner_text() == "being computed with its position"
    page.locator("#job-status").screenshot(path=str(ARTIFACTS / "job_position_computing.png"))
    assert errors == []

    restartable.stop()  # (the page's socket logs its failed reconnects meanwhile)
    restartable.start()  # with its scheduler: it applies the job and publishes a plan
    page.goto(f"{restartable.url}/jobs/{uid}")
    errors.clear()
    page.wait_for_function(
        """() => {
            const p = document.getElementById('job-position');
            return !p || p.dataset.state !== 'being_computed';
        }""",
        timeout=60_000,
    )
    # Read in one go: live updates may replace the element (or, once the job starts,
    # remove it) between two calls.
    shown = page.evaluate("() => document.getElementById('job-position')?.innerText ?? null")
    if shown is not None:  # still queued behind the demo's traffic: it has its place now
        assert "being computed" not in shown
    page.screenshot(path=str(ARTIFACTS / "job_position_planned.png"))
    assert errors == []

"""A device's page and the submit form's transpile box, in Chromium against `serve --demo`."""

from __future__ import annotations

from tests.browser.conftest import ARTIFACTS, logged_in, playwright

COLORBAR = """() => {
  const chart = document.getElementById('coupling-map');
  const qubits = chart.data[chart.data.length - 1];
  return {traces: chart.data.length, qubits: qubits.x.length,
          title: qubits.marker.colorbar.title.text};
}"""


def test_a_researcher_opens_a_devices_page_from_the_dashboard(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "alice", size=(1400, 1000))
    page.click("#backend-sim_kyiv h2 a")
    page.wait_for_url(server + "/backends/sim_kyiv")
    page.wait_for_selector("#coupling-map .main-svg", timeout=20_000)
    drawn = page.evaluate(COLORBAR)
    # 144 couplers, their colour bar, and the 127 qubits.
    assert drawn == {"traces": 146, "qubits": 127, "title": "readout error"}
    assert "profile kyiv" in page.inner_text("#backend-summary")
    assert page.locator("table.calibration tbody tr").count() == 127
    assert "median ecr error" in page.inner_text("#medians")
    page.screenshot(path=str(ARTIFACTS / "backend_page_browser.png"), full_page=False)
    page.select_option("#qubit-metric", "t1")
    page.wait_for_function(
        "() => document.getElementById('coupling-map').data.at(-1)"
        ".marker.colorbar.title.text === 'T1 (µs)'"
    )
    page.locator("#coupling").screenshot(path=str(ARTIFACTS / "coupling_map_t1_browser.png"))
    page.goto(server + "/backends/sim_fez")
    page.wait_for_selector("#coupling-map .main-svg", timeout=20_000)
    assert page.evaluate(COLORBAR)["qubits"] == 156
    page.locator("#coupling").screenshot(path=str(ARTIFACTS / "coupling_map_fez_browser.png"))
    assert errors == []


def test_the_form_transpiles_for_a_device_when_its_box_is_ticked(
    browser: playwright.Browser, server: str
) -> None:
    page, errors = logged_in(browser, server, "alice", size=(1280, 1000))
    page.goto(server + "/submit")
    page.select_option("#id_backend", "sim_lima")
    assert not page.locator("#id_transpile").is_visible()  # an ideal backend runs anything
    page.select_option("#id_backend", "sim_kyiv")
    assert page.locator("#id_transpile").is_visible() and page.is_checked("#id_transpile")
    assert page.get_attribute("#backend-page", "href") == "/backends/sim_kyiv"
    page.select_option("#id_instance", "ibm-q/research/qec")
    page.click("button[data-example=bell]")

    # Not ticked: the device refuses the Bell example's h and cx, next to the circuit.
    page.uncheck("#id_transpile")
    page.click("#submit-form button[type=submit]")
    error = page.locator("#submit-form .errorlist")
    error.wait_for()
    assert "The instruction h on qubits (0,) is not supported by the target system" in (
        error.inner_text()
    )
    assert page.url == server + "/submit"
    page.screenshot(path=str(ARTIFACTS / "submit_not_isa_browser.png"), full_page=True)

    # Ticked: transpiled, and the job page says what came of it.
    page.check("#id_transpile")
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(server + "/jobs/q*")
    note = page.locator(".messages li").inner_text()
    assert note.startswith("Transpiled for sim_kyiv: depth ") and "two-qubit gate" in note
    assert "sim_kyiv" in page.inner_text("#job-status")
    page.screenshot(path=str(ARTIFACTS / "submit_transpiled_browser.png"), full_page=True)
    assert errors == []

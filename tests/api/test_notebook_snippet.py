"""The account page's notebook snippet, run as a researcher would run it: the unmodified
`qiskit-ibm-runtime` client saves the account, then connects with no arguments and
samples a Bell pair on a live qdash server."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.api.test_real_client import scheduler_thread  # noqa: F401 (a fixture)
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The client deprecates SamplerV2 in favour of the executor-based Sampler.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
CLIENT_VARIABLES = (
    "QISKIT_IBM_TOKEN",
    "QISKIT_IBM_URL",
    "QISKIT_IBM_INSTANCE",
    "QISKIT_IBM_CHANNEL",
)


def snippet(page: str, name: str) -> str:
    """The code of one of the page's snippets, as a copy of it gives it."""
    found = re.search(rf'<code id="snippet-{name}">(.*?)</code>', page, re.DOTALL)
    assert found is not None, name
    return html.unescape(found.group(1))


@pytest.fixture
def saved_accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client's account file in a scratch folder, and none of its variables set."""
    from qiskit_ibm_runtime.accounts import management

    path = tmp_path / "qiskit-ibm.json"
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(path))
    for name in CLIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # The snippet sets these two itself; monkeypatch puts them back afterwards.
    monkeypatch.setenv("IAM_URL", "unset")
    monkeypatch.setenv("QISKIT_FUNCTIONS_EXPERIMENTAL", "")
    return path


@pytest.fixture
def page(live_server: Any, scheduler_thread: None, saved_accounts: Path) -> str:  # noqa: F811
    """The account page after its button made an API key into the snippet."""
    BackendFactory(name="sim_x", num_qubits=5)
    user = UserFactory(username="researcher")
    instance("hub/group/nb").members.add(user)
    browser = Client()
    browser.force_login(user)
    host = live_server.url.removeprefix("http://")
    response = browser.post(
        "/account/tokens", {"name": "notebook"}, HTTP_HOST=host, headers={"HX-Request": "true"}
    )
    return str(response.content.decode())


def connected(page: str) -> dict[str, Any]:
    """Run the snippet's saving part once, then its notebook part: the names it defines."""
    exec(snippet(page, "save"), {})  # noqa: S102 - the page's own snippet
    namespace: dict[str, Any] = {}
    exec(snippet(page, "sampler"), namespace)  # noqa: S102
    return namespace


def test_the_snippet_saves_the_account_and_samples_a_bell_pair(
    page: str, live_server: Any, saved_accounts: Path
) -> None:
    save = snippet(page, "save")
    assert f'url="{live_server.url}/experimental/api/v1"' in save
    assert 'instance="crn:v1:' in save and "hub.group.nb" in save

    namespace = connected(page)
    assert saved_accounts.exists()
    counts = namespace["result"][0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and abs(counts["00"] - 500) < 100
    assert namespace["service"].active_account()["instance"].endswith("hub.group.nb::")


def test_the_snippets_executor_sampler_samples_a_bell_pair(page: str) -> None:
    namespace = connected(page)
    exec(snippet(page, "executor"), namespace)  # noqa: S102
    counts = namespace["result"][0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and abs(counts["00"] - 500) < 100

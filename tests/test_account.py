"""The account page: a user's instances with their CRNs, and API keys made and revoked there."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from scheduler import models
from scheduler.api.auth import instance_crn
from scheduler.auth_tokens import access_token_check
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> Client:
    user = UserFactory(username="alice")
    instance("h/g/p").members.add(user)
    client = Client()
    client.force_login(user)
    return client


def test_it_shows_the_instances_and_their_crns(alice: Client) -> None:
    page = alice.get("/account").content.decode()

    assert "h/g/p" in page
    assert "crn:v1:" in page and "h.g.p" in page


def test_it_creates_a_key_shown_once_that_authenticates(alice: Client) -> None:
    page = alice.post("/account/tokens", {"name": "laptop"}, follow=True).content.decode()

    key = re.search(r"qdash_[A-Za-z0-9_-]+", page)
    assert key is not None
    assert access_token_check(token=key.group(0)).user.username == "alice"
    assert key.group(0) not in alice.get("/account").content.decode()  # shown once


def test_it_revokes_only_the_users_own_keys(alice: Client) -> None:
    alice.post("/account/tokens", {"name": "laptop"})
    token = models.ApiToken.objects.get()
    bob = Client()
    bob.force_login(UserFactory(username="bob"))

    assert bob.post(f"/account/tokens/{token.pk}/revoke").status_code == 404
    assert alice.post(f"/account/tokens/{token.pk}/revoke").status_code == 302
    assert not models.ApiToken.objects.exists()


def test_it_needs_a_login() -> None:
    assert Client().get("/account").status_code == 302


def snippet(page: str, name: str) -> str:
    found = re.search(rf'<code id="snippet-{name}">(.*?)</code>', page, re.DOTALL)
    assert found is not None, name
    return html.unescape(found.group(1))


def test_it_shows_a_notebook_snippet_with_the_users_url_and_instance(alice: Client) -> None:
    BackendFactory(name="sim_q")
    page = alice.get("/account").content.decode()

    save = snippet(page, "save")
    assert "QiskitRuntimeService.save_account(" in save
    assert 'channel="ibm_quantum_platform"' in save and 'token="YOUR_API_KEY"' in save
    assert 'url="http://testserver/experimental/api/v1"' in save
    assert f'instance="{instance_crn("h/g/p")}"' in save
    sampler = snippet(page, "sampler")
    assert 'os.environ["IAM_URL"] = "http://testserver"' in sampler
    assert "service = QiskitRuntimeService()\n" in sampler
    assert 'service.backend("sim_q")' in sampler and "SamplerV2(mode=backend)" in sampler
    executor = snippet(page, "executor")
    assert "from qiskit_ibm_runtime.executor_sampler import Sampler" in executor
    assert 'id="snippet-key"' in page


def test_the_snippets_button_creates_a_key_into_it_once(alice: Client) -> None:
    response = alice.post(
        "/account/tokens", {"name": "notebook", "instance": "h/g/p"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    fragment = response.content.decode()
    assert fragment.startswith('\n<section id="notebook">')
    key = re.search(r'token="(qdash_[A-Za-z0-9_-]+)"', snippet(fragment, "save"))
    assert key is not None
    assert access_token_check(token=key.group(1)).user.username == "alice"
    assert '<section id="api-keys" hx-swap-oob="true">' in fragment
    assert "<td>notebook</td>" in fragment  # the key list, swapped beside the snippet
    assert 'id="snippet-key"' not in fragment
    assert key.group(1) not in alice.get("/account").content.decode()
    assert "messages" not in response.cookies  # not carried to a later page


def test_the_snippet_follows_the_chosen_instance(alice: Client) -> None:
    instance("h/g/q").members.add(User.objects.get(username="alice"))

    page = alice.get("/account", {"instance": "h/g/q"}, headers={"HX-Request": "true"})
    assert f'instance="{instance_crn("h/g/q")}"' in snippet(page.content.decode(), "save")
    default = alice.get("/account").content.decode()
    assert f'instance="{instance_crn("h/g/p")}"' in snippet(default, "save")
    assert '<option value="h/g/q">' in default


def test_an_instance_that_is_not_the_users_is_refused(alice: Client) -> None:
    instance("other/g/p")

    response = alice.get("/account", {"instance": "other/g/p"})
    assert response.status_code == 400
    assert response.content.decode() == "other/g/p is not one of your instances."
    assert response["Content-Type"].startswith("text/plain")
    response = alice.post("/account/tokens", {"name": "n", "instance": "<b>x</b>"})
    assert response.status_code == 400 and not models.ApiToken.objects.exists()


def test_without_an_instance_the_snippet_says_whom_to_ask(client: Client) -> None:
    client.force_login(UserFactory(username="newcomer"))
    page = client.get("/account").content.decode()
    assert "ask an operator to add you" in page and "snippet-save" not in page

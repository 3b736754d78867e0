"""The account page: a user's instances with their CRNs, and API keys made and revoked there."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from scheduler import models
from scheduler.auth_tokens import access_token_check
from tests.factories import UserFactory, instance

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

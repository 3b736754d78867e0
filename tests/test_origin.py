"""Websockets from other sites' pages are refused before they reach a consumer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from qdash.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def connect(origin: bytes | None, host: bytes = b"qdash.local:8000") -> tuple[bool, int | None]:
    """(accepted, close code): code 4401 is the consumer's own "log in first"."""
    headers = [(b"host", host)] + ([(b"origin", origin)] if origin is not None else [])

    async def attempt() -> tuple[bool, int | None]:
        communicator = WebsocketCommunicator(application, "/ws/live", headers=headers)
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    return async_to_sync(attempt)()


def test_a_page_of_this_site_reaches_the_consumer() -> None:
    assert connect(b"http://qdash.local:8000") == (False, 4401)  # anonymous: the consumer says so


def test_a_program_without_origin_reaches_the_consumer() -> None:
    assert connect(None) == (False, 4401)


@pytest.mark.parametrize(
    "origin",
    [b"http://evil.example", b"http://qdash.local:9999", b"https://qdash.local.evil.example"],
)
def test_another_sites_page_is_refused(origin: bytes) -> None:
    accepted, code = connect(origin)
    assert not accepted and code != 4401


@override_settings(
    ALLOWED_HOSTS=["dash.example.org"], CSRF_TRUSTED_ORIGINS=["https://ops.example.org"]
)
def test_named_hosts_are_accepted_whatever_the_host_header() -> None:
    assert connect(b"https://dash.example.org", host=b"10.0.0.5:8000") == (False, 4401)
    assert connect(b"https://ops.example.org", host=b"10.0.0.5:8000") == (False, 4401)

"""Forwarded headers count only from trusted proxies (qdash/proxy.py)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from qdash.proxy import TrustedProxies, resolve, trusted_networks

LOCAL = trusted_networks(("127.0.0.1", "::1", "10.0.0.0/8"))


def scope(peer: str, **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "http",
        "client": (peer, 51000),
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


def test_a_trusted_proxy_gives_the_right_most_untrusted_address_and_the_scheme() -> None:
    seen = resolve(
        scope(
            "127.0.0.1",
            x_forwarded_for="198.51.100.1, 203.0.113.9, 10.1.2.3",
            x_forwarded_proto="https",
        ),
        LOCAL,
    )
    assert (seen["client"][0], seen["scheme"]) == ("203.0.113.9", "https")


def test_a_chain_of_trusted_hops_gives_its_first_address() -> None:
    seen = resolve(scope("::1", x_forwarded_for="10.0.0.5, 10.0.0.6"), LOCAL)
    assert seen["client"][0] == "10.0.0.5"


def test_forwarded_headers_from_anyone_else_are_dropped() -> None:
    forged = scope(
        "203.0.113.50",
        x_forwarded_for="127.0.0.1",
        x_forwarded_proto="https",
        user_agent="curl",
    )
    seen = resolve(forged, LOCAL)
    assert seen["client"] == ("203.0.113.50", 51000) and seen["scheme"] == "http"
    assert seen["headers"] == [(b"user-agent", b"curl")]


def test_a_websocket_gets_its_secure_scheme_from_the_proxy() -> None:
    ws = {**scope("127.0.0.1", x_forwarded_proto="https"), "type": "websocket", "scheme": "ws"}
    assert resolve(ws, LOCAL)["scheme"] == "wss"


@pytest.mark.parametrize(("behind_proxy", "client"), [(True, "198.51.100.1"), (False, "127.0.0.1")])
def test_the_middleware_believes_the_headers_only_behind_a_proxy(
    settings: Any, behind_proxy: bool, client: str
) -> None:
    settings.QDASH_BEHIND_PROXY = behind_proxy
    settings.QDASH_TRUSTED_PROXIES = ["127.0.0.1"]
    seen: list[dict[str, Any]] = []

    async def app(inner: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(inner)

    communicator = ApplicationCommunicator(
        TrustedProxies(app), scope("127.0.0.1", x_forwarded_for="198.51.100.1")
    )
    async_to_sync(communicator.wait)(timeout=5)
    assert seen[0]["client"][0] == client

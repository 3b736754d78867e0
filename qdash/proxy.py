"""Forwarded headers, believed only from the proxies this deployment names.

Behind a TLS-terminating proxy (`QDASH_BEHIND_PROXY`), the client's address and
scheme come from the proxy's `X-Forwarded-For` and `X-Forwarded-Proto`. A client
that reaches the port directly could send those headers too, so they count only
on connections from `QDASH_TRUSTED_PROXIES` (addresses or networks; loopback by
default). From anyone else they are removed before Django sees them, so neither
rate limits nor `SECURE_PROXY_SSL_HEADER` can be fooled. The client is the
right-most address of `X-Forwarded-For` that is not itself a trusted proxy, as
nginx's `real_ip_recursive` reads it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-host")


@functools.cache
def trusted_networks(addresses: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(address.strip(), strict=False) for address in addresses)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def resolve(scope: dict[str, Any], networks: tuple[Network, ...]) -> dict[str, Any]:
    """The scope as the client made the request: its address and scheme from a trusted
    proxy's headers, or the connection's own with forwarded headers dropped."""
    peer = (scope.get("client") or ("", 0))[0]
    headers = scope.get("headers") or []
    if not _trusted(peer, networks):
        kept = [(name, value) for name, value in headers if name.lower() not in FORWARDED]
        return {**scope, "headers": kept} if len(kept) != len(headers) else scope
    values = {name.lower().decode("latin-1"): value.decode("latin-1") for name, value in headers}
    resolved = dict(scope)
    chain = [hop.strip() for hop in values.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(chain):
        client = hop
        if not _trusted(hop, networks):
            break
    else:
        client = chain[0] if chain else peer
    if chain:
        resolved["client"] = (client, 0)
    proto = values.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        secure = proto == "https"
        if scope["type"] == "websocket":
            resolved["scheme"] = "wss" if secure else "ws"
        else:
            resolved["scheme"] = proto
    return resolved


class TrustedProxies:
    """ASGI middleware applying `resolve` to HTTP and websocket scopes when qdash runs
    behind a proxy; otherwise forwarded headers are dropped from every request."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            proxies = tuple(settings.QDASH_TRUSTED_PROXIES) if settings.QDASH_BEHIND_PROXY else ()
            scope = resolve(scope, trusted_networks(proxies))
        await self.app(scope, receive, send)

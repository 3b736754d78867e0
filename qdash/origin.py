"""Websockets only from this site's own pages (a cross-site page must not ride a cookie)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings


class SameOriginValidator(OriginValidator):
    """Accept a websocket whose `Origin` is the host the browser connected to (its `Host`
    header), or a host named in ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS (a `*` there
    does not count: it only means "any Host header").

    A connection without `Origin` comes from a program, not a browser page, and
    is accepted: it carries no victim's cookies.
    """

    def __init__(self, application: Any) -> None:
        super().__init__(application, [])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin")
        host = headers.get(b"host", b"").decode("latin1").lower()
        if origin is None or self._allowed(origin.decode("latin1"), host):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

    def _allowed(self, origin: str, host: str) -> bool:
        parsed = urlparse(origin)
        if parsed.netloc.lower() == host:
            return True
        named = [name for name in settings.ALLOWED_HOSTS if name != "*"]
        patterns = [*named, *settings.CSRF_TRUSTED_ORIGINS]
        return any(self.match_allowed_origin(parsed, pattern) for pattern in patterns)

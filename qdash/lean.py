"""Middleware that only pages use, skipped for API calls.

An API call authenticates with a bearer token and answers JSON: it has no
session cookie, no CSRF token, no flash messages, no htmx headers and changes
nothing the audit log records on a request's behalf. Each class here is the
middleware of the same name, a subclass (so Django's and the admin's checks still
find it), that hands a request under one of `API_PREFIXES` straight to the next
one. Everything else (the request id, the security headers, the host check, CSRF,
whose checks Django's own deploy check requires by name and which exempts the API's
views, the CSP and frame headers, the login lock-outs) runs for every request.
"""

from __future__ import annotations

from typing import Any

from auditlog.middleware import AuditlogMiddleware as _Auditlog
from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Message
from django.contrib.sessions.middleware import SessionMiddleware as _Session
from django.http import HttpRequest
from django_htmx.middleware import HtmxMiddleware as _Htmx

API_PREFIXES = ("/api/", "/experimental/", "/identity/")


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIXES)


class PagesOnly:
    """Passes API calls by: neither its request nor its response hooks run for them."""

    get_response: Any

    def __call__(self, request: HttpRequest) -> Any:
        if is_api(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(PagesOnly, _Session):
    pass


class AuthenticationMiddleware(PagesOnly, _Authentication):
    pass


class MessageMiddleware(PagesOnly, _Message):
    pass


class HtmxMiddleware(PagesOnly, _Htmx):
    pass


class AuditlogMiddleware(PagesOnly, _Auditlog):
    pass

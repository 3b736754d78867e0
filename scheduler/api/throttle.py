"""Request limits of the API: per API key per minute, and bad keys per address.

Counted in Django's cache (Redis when REDIS_URL is set, so every web process
shares the counts) with django-ratelimit. A refusal is a 429 with
`Retry-After`, the seconds until the window ends.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from scheduler.api.errors import ApiError


def _refuse(usage: dict | None, message: str) -> None:
    if usage is not None and usage["should_limit"]:
        retry = max(1, int(usage["time_left"]))
        raise ApiError(429, "rate_limited", message, headers={"Retry-After": str(retry)})


def key_request(request: HttpRequest, key_id: int) -> None:
    """Count a request made with API key `key_id`; refuse it past the key's rate."""
    rate = settings.QDASH_API_REQUESTS_PER_MINUTE
    usage = get_usage(
        request,
        group="api-key",
        key=lambda group, req: str(key_id),
        rate=f"{rate}/m",
        increment=True,
    )
    _refuse(usage, f"More than {rate} requests a minute with this API key; slow down.")


def _address(group: str, request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def failures_allowed(request: HttpRequest) -> None:
    """Refuse an address that sent too many bad keys or tokens in the last minute."""
    rate = settings.QDASH_API_FAILURES_PER_MINUTE
    usage = get_usage(request, group="api-failures", key=_address, rate=f"{rate}/m")
    if usage is not None:  # looked at, not counted: the rate's own test is "more than"
        usage["should_limit"] = usage["count"] >= usage["limit"]
    _refuse(usage, f"{rate} failed authentications a minute from this address; wait.")


def failure(request: HttpRequest) -> None:
    """Count a bad key or token from this address."""
    rate = settings.QDASH_API_FAILURES_PER_MINUTE
    get_usage(request, group="api-failures", key=_address, rate=f"{rate}/m", increment=True)

"""Request limits of the API: per API key per minute, and bad keys per address and per
key prefix.

Counted in Django's cache (Redis when REDIS_URL is set, so every web process
shares the counts): bad keys with django-ratelimit, a key's requests in one
round trip to Redis (`INCR` and `EXPIRE` in a pipeline; django-ratelimit's
`add` then `incr` takes three), since every API call counts one. A refusal is a
429 with `Retry-After`, the seconds until the window ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from scheduler import auth_tokens
from scheduler.api.errors import ApiError

T = TypeVar("T")


def _refuse(usage: dict | None, message: str) -> None:
    if usage is not None and usage["should_limit"]:
        retry = max(1, int(usage["time_left"]))
        raise ApiError(429, "rate_limited", message, headers={"Retry-After": str(retry)})


WINDOW_SECONDS = 60


def key_request(request: HttpRequest, key_id: int) -> None:
    """Count a request made with API key `key_id`; refuse it past the key's rate."""
    rate = settings.QDASH_API_REQUESTS_PER_MINUTE
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    count = _incr(f"qdash-api-key:{key_id}:{window}", WINDOW_SECONDS + 10)
    if count > rate:
        left = (window + 1) * WINDOW_SECONDS - now
        usage = {"should_limit": True, "time_left": left}
        _refuse(usage, f"More than {rate} requests a minute with this API key; slow down.")


def _incr(key: str, expires: int) -> int:
    """Add one to the count at `key` in the cache (created at 0, living `expires` seconds)."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        full = cache.make_and_validate_key(key)
        client: Any = cache._cache.get_client(full, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(full)
        pipe.expire(full, expires)
        count, _ = pipe.execute()
        return int(count)
    cache.add(key, 0, expires)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between the two: start again
        cache.add(key, 1, expires)
        return 1


def _address(group: str, request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


PREFIX_CHARS = 14  # "qdash_" and the first 8 characters of the secret


def failure(request: HttpRequest, token: str) -> None:
    """Count a bad key or token, per address and per key prefix; past the limit of either,
    refuse it with 429 instead of 401.

    Only failures are counted and refused: a valid key is checked first and always
    passes, so one caller's bad keys never lock out the others behind the same address.
    """
    rate = settings.QDASH_API_FAILURES_PER_MINUTE
    prefix = token.strip()[:PREFIX_CHARS]
    limited = None
    for group, key in (
        ("api-failures", _address),
        ("api-failures-prefix", lambda group, request: prefix),
    ):
        usage = get_usage(request, group=group, key=key, rate=f"{rate}/m", increment=True)
        if usage is not None and usage["should_limit"]:
            limited = usage
    _refuse(limited, f"More than {rate} failed authentications a minute; wait.")


def check_secret(request: HttpRequest, secret: str, check: Callable[[str], T], *, code: str) -> T:
    """What `check` answers for the stripped `secret` (an API key or an access token). A
    secret it refuses counts as a `failure` and is answered 401 with `code`."""
    try:
        return check(secret.strip())
    except auth_tokens.TokenError as error:
        failure(request, secret)
        raise ApiError(401, code, str(error)) from None

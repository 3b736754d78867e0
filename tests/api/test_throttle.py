"""API limits per key and per address, and what an API bug answers."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client, override_settings

from scheduler import models
from tests.api.conftest import Caller
from tests.conftest import REDIS_URL, _redis_reachable

pytestmark = pytest.mark.django_db


def test_an_api_bug_answers_json_with_a_request_id_and_no_traceback(
    alice: Caller, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from scheduler.api import backends

    def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

    import qdash.urls  # noqa: F401 - loaded before the patch (a form's queryset needs all())

    monkeypatch.setattr(backends.models.Backend.objects, "all", broken)
    response = alice.client.get("/api/v1/backends", headers=alice.headers())
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "server_error" and body["request_id"]
    assert response["X-Request-ID"] == body["request_id"]
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert "secret internals" in caplog.text  # the log has the rest


@override_settings(QDASH_API_FAILURES_PER_MINUTE=3)
def test_bad_api_keys_from_one_address_are_throttled_but_a_valid_key_still_passes(
    alice: Caller, backend: models.Backend
) -> None:
    statuses = [
        Client()
        .get("/api/v1/backends", headers={"Authorization": f"Bearer qdash_wrong{n}"})
        .status_code
        for n in range(5)
    ]
    assert statuses[:3] == [401] * 3 and statuses[3:] == [429, 429]
    refused = Client().post("/identity/token", {"apikey": "qdash_other", "grant_type": "x"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    # Someone else behind the same address (a shared NAT) is not locked out.
    token = Client().post("/identity/token", {"apikey": alice.key, "grant_type": "x"})
    assert token.status_code == 200
    assert alice.get("/backends").status_code == 200


@override_settings(QDASH_API_FAILURES_PER_MINUTE=3)
def test_bad_keys_with_one_prefix_are_throttled_whatever_their_address(alice: Caller) -> None:
    prefix = alice.key[:14]
    statuses = [
        Client(REMOTE_ADDR=f"203.0.113.{n}")
        .get("/api/v1/backends", headers={"Authorization": f"Bearer {prefix}guess{n}"})
        .status_code
        for n in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    assert alice.get("/backends").status_code == 200  # the real key still works


@override_settings(QDASH_API_REQUESTS_PER_MINUTE=3)
def test_requests_per_minute_per_key_get_retry_after(
    alice: Caller, backend: models.Backend
) -> None:
    statuses = [alice.get("/backends").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = alice.get("/backends")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert json.loads(refused.content)["code"] == "rate_limited"


@pytest.mark.parametrize("layer", ["memory", "redis"])
def test_a_keys_requests_are_counted_in_one_window_on_either_cache(
    alice: Caller, backend: models.Backend, layer: str
) -> None:
    """The per-key count: in the process's memory, or in Redis in one round trip."""
    caches_setting = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    if layer == "redis":
        if not _redis_reachable():
            if os.environ.get("CI") == "true":
                pytest.fail(f"Redis is not reachable at {REDIS_URL}")
            pytest.skip(f"Redis is not reachable at {REDIS_URL}")
        caches_setting = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": f"test-throttle-{uuid.uuid4().hex}",
            }
        }
    with (
        override_settings(CACHES=caches_setting, QDASH_API_REQUESTS_PER_MINUTE=3),
        time_machine.travel(datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC), tick=False) as clock,
    ):
        statuses = [alice.get("/backends").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert int(alice.get("/backends")["Retry-After"]) == 50
        clock.shift(50)  # the next minute: a new window
        assert alice.get("/backends").status_code == 200

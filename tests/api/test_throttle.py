"""API limits per key and per address, and what an API bug answers."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from scheduler import models
from tests.api.conftest import Caller

pytestmark = pytest.mark.django_db


def test_an_api_bug_answers_json_with_a_request_id_and_no_traceback(
    alice: Caller, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from scheduler.api import backends

    def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

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
def test_bad_api_keys_from_one_address_are_throttled(alice: Caller) -> None:
    statuses = [
        Client()
        .get("/api/v1/backends", headers={"Authorization": "Bearer qdash_wrong"})
        .status_code
        for _ in range(5)
    ]
    assert statuses[:3] == [401] * 3 and statuses[3:] == [429, 429]
    blocked = Client().post("/identity/token", {"apikey": alice.key, "grant_type": "x"})
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) >= 1


@override_settings(QDASH_API_REQUESTS_PER_MINUTE=3)
def test_requests_per_minute_per_key_get_retry_after(
    alice: Caller, backend: models.Backend
) -> None:
    statuses = [alice.get("/backends").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = alice.get("/backends")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert json.loads(refused.content)["code"] == "rate_limited"

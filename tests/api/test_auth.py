"""API keys, the token endpoint, bearer checks and the Service-CRN header."""

from __future__ import annotations

import json
import time
from io import StringIO

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from scheduler import models
from scheduler.auth_tokens import key_hash, signing_key
from tests.api.conftest import Caller
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def exchange(key: str) -> object:
    return Client().post(
        "/identity/token",
        {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": key},
    )


def test_it_stores_only_the_hash_of_the_key(alice: Caller) -> None:
    row = models.ApiToken.objects.get(user=alice.user)
    assert row.key_hash == key_hash(alice.key)
    assert alice.key not in row.key_hash


def test_it_exchanges_a_key_for_a_signed_jwt(alice: Caller) -> None:
    response = exchange(alice.key)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"], signing_key(), algorithms=["HS256"])
    assert claims["exp"] == body["expiration"] and "iat" in claims
    assert models.ApiToken.objects.get(user=alice.user).last_used is not None


def test_it_accepts_the_jwt_as_bearer(alice: Caller, backend: models.Backend) -> None:
    access = exchange(alice.key).json()["access_token"]
    response = Client().get(
        "/api/v1/backends", headers={"Authorization": f"Bearer {access}", "Service-CRN": alice.crn}
    )
    assert response.status_code == 200
    assert response.json()["devices"][0]["name"] == "sim_a"


def test_it_refuses_a_wrong_key_at_the_token_endpoint() -> None:
    response = exchange("qdash_nope")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_apikey"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer nonsense", "Bearer qdash_wrong", "Basic abc"],
)
def test_it_answers_401_json_without_a_valid_bearer(header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = Client().get("/api/v1/backends", headers=headers)
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message"}


def test_it_refuses_a_jwt_with_a_bad_signature_or_expired(alice: Caller) -> None:
    row = models.ApiToken.objects.get(user=alice.user)
    claims = {"sub": str(alice.user.pk), "tid": row.pk, "iat": 1, "exp": 2}
    expired = jwt.encode(claims, signing_key(), algorithm="HS256")
    forged = jwt.encode(
        {**claims, "exp": 2**40}, "another-key-of-at-least-32-bytes!", algorithm="HS256"
    )
    for token, words in ((expired, "expired"), (forged, "Invalid")):
        response = Client().get("/api/v1/backends", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert words in response.json()["message"]


def test_it_refuses_a_jwt_of_a_revoked_key(alice: Caller) -> None:
    access = exchange(alice.key).json()["access_token"]
    models.ApiToken.objects.filter(user=alice.user).delete()
    response = Client().get("/api/v1/backends", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 401


def test_it_answers_403_for_an_instance_the_user_is_not_in(alice: Caller, bob: Caller) -> None:
    response = Client().get(
        "/api/v1/backends", headers={"Authorization": f"Bearer {alice.key}", "Service-CRN": bob.crn}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_instance"


def test_issue_token_prints_what_the_client_needs(alice: Caller) -> None:
    out = StringIO()
    call_command("issue_token", "--user", "alice", "--json", "--port", "9000", stdout=out)
    data = json.loads(out.getvalue())
    assert data["url"] == "http://127.0.0.1:9000/experimental/api/v1"
    assert data["iam_url"] == "http://127.0.0.1:9000"
    assert data["instances"] == [{"name": "hub/group/alice", "crn": alice.crn}]
    crn = data["instances"][0]["crn"]
    assert crn.startswith("crn:") and crn.count(":") >= 6 and "staging" not in crn.split(":")[2]
    assert exchange(data["token"]).status_code == 200


def test_issue_token_refuses_an_unknown_user() -> None:
    UserFactory(username="carol")
    with pytest.raises(CommandError):
        call_command("issue_token", "--user", "nobody", stdout=StringIO())


def _bearer(token: str) -> int:
    response = Client().get("/api/v1/backends", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_it_refuses_a_token_signed_with_the_old_built_in_key(alice: Caller) -> None:
    import hashlib

    row = models.ApiToken.objects.get(user=alice.user)
    old = hashlib.sha256(b"qdash-access-token:dev-only-insecure-key-change-me").digest()
    now = int(time.time())
    forged = jwt.encode(
        {"sub": str(alice.user.pk), "tid": row.pk, "iat": now, "exp": now + 60}, old, "HS256"
    )
    assert signing_key() != old
    assert _bearer(forged) == 401


def test_an_access_token_lives_at_most_an_hour_whatever_exp_says(alice: Caller) -> None:
    row = models.ApiToken.objects.get(user=alice.user)
    now = int(time.time())
    claims = {"sub": str(alice.user.pk), "tid": row.pk}

    def token(iat: int, exp: int) -> str:
        return jwt.encode({**claims, "iat": iat, "exp": exp}, signing_key(), algorithm="HS256")

    years = 31 * 365 * 86400
    assert _bearer(token(now - 60, now + years)) == 200
    assert _bearer(token(now - 3601, now + years)) == 401  # issued more than an hour ago
    assert _bearer(token(now + 3600, now + years)) == 401  # "issued" in the future
    assert _bearer(token(now - 60, now - 1)) == 401  # expired when it says so

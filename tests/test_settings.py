"""Settings: production refuses unsafe defaults and passes `check --deploy`; errors
reveal nothing; the favicon; login and API-key throttling."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
KEY = secrets.token_urlsafe(64)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    unset = ("SECRET_KEY", "QDASH_PRODUCTION", "ALLOWED_HOSTS", "DEBUG", "REDIS_URL")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_production_settings_pass_check_deploy_without_warnings(tmp_path: Path) -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        QDASH_PRODUCTION="1",
        SECRET_KEY=KEY,
        ALLOWED_HOSTS="qdash.example.org",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "trusted"),
    [
        ({}, False),
        ({"QDASH_BEHIND_PROXY": "1"}, True),
        ({"QDASH_PRODUCTION": "1"}, True),
        ({"QDASH_PRODUCTION": "1", "QDASH_BEHIND_PROXY": "0"}, False),
    ],
)
def test_x_forwarded_proto_is_trusted_only_behind_a_proxy(
    tmp_path: Path, env: dict, trusted: bool
) -> None:
    code = (
        "import django; django.setup()\nfrom django.conf import settings\n"
        "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
    )
    unset = ("DEBUG", "QDASH_PRODUCTION", "QDASH_BEHIND_PROXY", "ALLOWED_HOSTS")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    base |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "SECRET_KEY": KEY}
    base |= {"ALLOWED_HOSTS": "qdash.example.org", "DJANGO_SETTINGS_MODULE": "qdash.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=base | env, cwd=ROOT, capture_output=True, text=True
    )
    expected = "('HTTP_X_FORWARDED_PROTO', 'https')" if trusted else "None"
    assert out.stdout.strip() == expected, out.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS must name the host names"),
        ({"ALLOWED_HOSTS": "q.example.org", "DEBUG": "true"}, "DEBUG must be off"),
    ],
)
def test_production_refuses_to_start_unsafe(tmp_path: Path, env: dict, message: str) -> None:
    result = manage(
        "check",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        QDASH_PRODUCTION="1",
        SECRET_KEY=KEY,
        **env,
    )
    assert result.returncode != 0 and message in result.stderr


def test_debug_is_off_unless_asked_for(tmp_path: Path) -> None:
    code = "import django; django.setup()\nfrom django.conf import settings\nprint(settings.DEBUG)"
    unset = ("DEBUG", "QDASH_PRODUCTION")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["DJANGO_SETTINGS_MODULE"] = "qdash.settings"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.django_db
def test_a_missing_page_names_no_url_pattern(client: Client) -> None:
    response = client.get("/nowhere/at/all")
    assert response.status_code == 404
    assert "healthz" not in response.content.decode() and "URLconf" not in response.content.decode()
    api = client.get("/api/v1/nowhere")
    assert api.status_code == 404 and set(api.json()) >= {"code", "message"}


@pytest.mark.django_db
def test_the_favicon_is_served_at_the_root(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(response.streaming_content)


@pytest.mark.django_db
def test_logins_are_locked_out_after_repeated_failures(client: Client) -> None:
    from tests.factories import UserFactory

    UserFactory(username="victim", password="right-password")
    answers = [
        client.post("/login/", {"username": "victim", "password": f"wrong{n}"}).status_code
        for n in range(6)
    ]
    assert answers[:4] == [200] * 4 and answers[4:] == [429, 429]  # the fifth failure locks
    locked = client.post("/login/", {"username": "victim", "password": "right-password"})
    assert locked.status_code == 429  # even the right password, until the cool-off ends
    assert "_auth_user_id" not in client.session

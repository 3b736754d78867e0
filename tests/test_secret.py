"""The secret key: never a constant; kept beside the database; required in production."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from qdash.secret import MIN_LENGTH, secret_key

ROOT = Path(__file__).resolve().parent.parent
PRINT_SECRET_KEY = (
    "import django\ndjango.setup()\nfrom django.conf import settings\nprint(settings.SECRET_KEY)"
)


def test_it_creates_a_private_random_key_once(tmp_path: Path) -> None:
    kept = tmp_path / "db.sqlite3.secret-key"
    first = secret_key(configured=None, production=False, keep_at=kept)
    assert len(first) >= MIN_LENGTH
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert secret_key(configured=None, production=False, keep_at=kept) == first
    other = secret_key(configured=None, production=False, keep_at=tmp_path / "other")
    assert other != first


def test_it_replaces_a_truncated_key_file(tmp_path: Path) -> None:
    kept = tmp_path / "key"
    kept.write_text("short\n")
    key = secret_key(configured=None, production=False, keep_at=kept)
    assert len(key) >= MIN_LENGTH and kept.read_text().strip() == key


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    kept = tmp_path / "key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: _key(kept), range(32)))
    assert keys == {kept.read_text().strip()}
    assert [p.name for p in tmp_path.iterdir()] == ["key"]  # no temporary files left


def _key(kept: Path) -> str:
    return secret_key(configured=None, production=False, keep_at=kept)


def test_a_configured_key_wins(tmp_path: Path) -> None:
    key = secret_key(configured="k" * 60, production=True, keep_at=tmp_path / "key")
    assert key == "k" * 60
    assert not (tmp_path / "key").exists()


@pytest.mark.parametrize("configured", [None, "", "too-short"])
def test_production_refuses_to_start_without_a_real_key(
    tmp_path: Path, configured: str | None
) -> None:
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        secret_key(configured=configured, production=True, keep_at=tmp_path / "key")
    assert not (tmp_path / "key").exists()


def _settings_key(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = PRINT_SECRET_KEY
    unset = ("SECRET_KEY", "QDASH_PRODUCTION", "ALLOWED_HOSTS", "DEBUG")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "qdash.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_embedded_default_keeps_its_key_beside_the_sqlite_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    first = _settings_key(env)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert (tmp_path / "db.sqlite3.secret-key").read_text().strip() == key
    assert _settings_key(env).stdout.strip() == key  # the same after a restart
    elsewhere = _settings_key({"DATABASE_URL": f"sqlite:///{tmp_path / 'b.sqlite3'}"})
    assert elsewhere.stdout.strip() not in ("", key)


def test_production_settings_refuse_to_load_without_a_key(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "QDASH_PRODUCTION": "1",
        "ALLOWED_HOSTS": "qdash.example.org",
    }
    result = _settings_key(env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "db.sqlite3.secret-key").exists()

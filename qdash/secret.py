"""The secret key of a deployment that names none: random, made once, kept beside the database.

A constant in the source would let anyone who reads it sign session cookies and
API access tokens. Production (`QDASH_PRODUCTION=1`) must name its own key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

MIN_LENGTH = 50  # Django's `check --deploy` asks for at least 50 characters


def secret_key(*, configured: str | None, production: bool, keep_at: Path) -> str:
    """`configured` when set; otherwise the key kept at `keep_at`, created on first use."""
    if configured:
        if production and len(configured) < MIN_LENGTH:
            raise ImproperlyConfigured(f"SECRET_KEY must have at least {MIN_LENGTH} characters.")
        return configured
    if production:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Production (QDASH_PRODUCTION=1) needs a secret key of its "
            "own, the same in every process: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
        )
    return _kept_key(keep_at)


def _kept_key(path: Path) -> str:
    kept = _read(path)
    if kept is not None:
        return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(64)
    # Written to a private temporary file, then linked into place: processes starting
    # together all use the key of the first one to link, and nobody reads half a key.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        kept = _read(path)
        if kept is None:  # an empty or truncated file: replace it
            os.replace(temporary, path)
        else:
            key = kept
    finally:
        temporary.unlink(missing_ok=True)
    return key


def _read(path: Path) -> str | None:
    with contextlib.suppress(FileNotFoundError):
        key = path.read_text().strip()
        if len(key) >= MIN_LENGTH:
            return key
    return None

"""Callers the API authenticated a moment ago, remembered in this process's memory.

A client presents the same access token on every call (the real one polls its
job's status every few seconds). Checking it costs a JWT verification and two
queries: the API key with its user, and the user's instances. A bearer that
passed is remembered here for `QDASH_AUTH_CACHE_SECONDS` (1 s by default), keyed
by its SHA-256 (memory never holds a secret), with its user and the project
instances the user may submit in; never past the bearer's own expiry. Only
bearers that passed are kept: a bad one is checked, counted by the throttle and
refused every time, as before.

Revocation: deleting an API key, saving or deleting a user (deactivation among
them), and any change of an instance or its members forget every caller of this
process at once (signals, connected in `AppConfig.ready`). Other processes notice
at their next check, within `QDASH_AUTH_CACHE_SECONDS`; 0 turns the memory off.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from scheduler import auth_tokens, models

MOST_CALLERS = 10_000  # bearers remembered at once; the oldest are forgotten first


@dataclass(frozen=True)
class Caller:
    """An authenticated bearer: its API key (with the user) and the user's projects."""

    token: models.ApiToken
    projects: tuple[models.Instance, ...]
    until: float  # time.monotonic() after which it is checked again
    expires: float | None  # Unix seconds: the bearer's own end (None: an API key)


_callers: dict[str, Caller] = {}
_lock = threading.Lock()
_generation = 0  # counts forgets, so a check that raced one is not kept
# The clocks: monotonic for how long a caller is remembered, Unix time for a bearer's expiry.
monotonic = time.monotonic
wall = time.time


def member_projects(user: Any) -> list[models.Instance]:
    """The project instances `user` may submit in."""
    return [node for node in user.instances.order_by("path") if node.is_project]


def caller_of(secret: str) -> Caller:
    """The caller a bearer (an access token or an API key) authenticates; raises
    `auth_tokens.TokenError` as `access_token_check` does."""
    digest = hashlib.sha256(secret.encode()).hexdigest()
    known = _callers.get(digest)
    fresh = known is not None and known.until > monotonic()
    if fresh and known is not None and (known.expires is None or known.expires > wall()):
        return known
    generation = _generation
    row, expires = auth_tokens.access_token_verify(token=secret)
    ttl = float(getattr(settings, "QDASH_AUTH_CACHE_SECONDS", 1.0))
    caller = Caller(row, tuple(member_projects(row.user)), monotonic() + ttl, expires)
    if ttl > 0:
        with _lock:
            if generation == _generation:  # nothing was revoked while it was checked
                _callers.pop(digest, None)
                _callers[digest] = caller
                while len(_callers) > MOST_CALLERS:
                    del _callers[next(iter(_callers))]
    return caller


def forget_all(**_: Any) -> None:
    """Forget every remembered caller of this process (a revocation, a membership change):
    now, and again when the change commits, so a check that read the database between
    the two is not kept either."""
    forget()
    transaction.on_commit(forget)


def forget() -> None:
    global _generation
    with _lock:
        _generation += 1
        _callers.clear()


def connect() -> None:
    """Forget callers whenever what authenticated them may have changed."""
    user = get_user_model()
    for sender in (models.ApiToken, user, models.Instance):
        post_delete.connect(forget_all, sender=sender, dispatch_uid=f"callers-del-{sender}")
    for sender in (user, models.Instance):
        post_save.connect(forget_all, sender=sender, dispatch_uid=f"callers-save-{sender}")
    m2m_changed.connect(
        forget_all, sender=models.Instance.members.through, dispatch_uid="callers-members"
    )

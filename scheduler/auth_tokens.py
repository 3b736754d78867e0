"""API keys and the short-lived access tokens (JWT, HS256) exchanged for them.

An API key is shown once when issued; only its SHA-256 is stored. The client
trades it at `/identity/token` for a JWT signed with a key derived from `SECRET_KEY`, and sends
that JWT as `Authorization: Bearer` on every call.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from scheduler import models

ACCESS_TOKEN_SECONDS = 3600  # the longest an access token lives, whatever its `exp` says
CLOCK_SKEW_SECONDS = 30  # an `iat` this far in the future is still believed
ALGORITHM = "HS256"
KEY_PREFIX = "qdash_"
# last_used is written at most this often per key, so polling does not write each time.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class TokenError(Exception):
    """An API key or access token that does not authenticate anyone."""


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    expiration: int  # Unix seconds


def signing_key() -> bytes:
    """The HS256 key: derived from SECRET_KEY, so it is 32 bytes whatever SECRET_KEY's length."""
    return hashlib.sha256(b"qdash-access-token:" + settings.SECRET_KEY.encode()).digest()


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tokens_issue(*, user: User, name: str = "") -> tuple[models.ApiToken, str]:
    """Create an API key for `user`; returns the row and the secret (shown only now)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = models.ApiToken.objects.create(user=user, name=name, key_hash=key_hash(key))
    return token, key


def tokens_check_key(*, key: str) -> models.ApiToken:
    """The token row of an API key, with its user; raises `TokenError`."""
    token = (
        models.ApiToken.objects.select_related("user")
        .filter(key_hash=key_hash(key), user__is_active=True)
        .first()
    )
    if token is None:
        raise TokenError("Invalid API key.")
    _touch(token)
    return token


def _check_age(claims: dict[str, object]) -> None:
    """An access token lives at most ACCESS_TOKEN_SECONDS from when it was issued."""
    issued = claims["iat"]
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        raise TokenError("Invalid access token.")
    now = timezone.now().timestamp()
    if issued > now + CLOCK_SKEW_SECONDS:
        raise TokenError("Invalid access token: issued in the future.")
    if now - issued > ACCESS_TOKEN_SECONDS:
        raise TokenError("The access token expired; request a new one.")


def _touch(token: models.ApiToken) -> None:
    now = timezone.now()
    if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION:
        models.ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now


def access_token_create(*, token: models.ApiToken) -> AccessToken:
    """A signed JWT for the key's user, valid for an hour."""
    now = int(timezone.now().timestamp())
    exp = now + ACCESS_TOKEN_SECONDS
    payload = {"sub": str(token.user_id), "tid": token.pk, "iat": now, "exp": exp}
    encoded = jwt.encode(payload, signing_key(), algorithm=ALGORITHM)
    return AccessToken(encoded, ACCESS_TOKEN_SECONDS, exp)


def access_token_check(*, token: str) -> models.ApiToken:
    """The API key behind a JWT after checking signature, expiry and that the key still exists.

    A bearer that is not a JWT is tried as a plain API key (for curl and scripts).
    """
    return access_token_verify(token=token)[0]


def access_token_verify(*, token: str) -> tuple[models.ApiToken, float | None]:
    """`access_token_check`, and the Unix time the bearer stops being valid by itself
    (None for a plain API key, which is valid until it is revoked)."""
    if token.startswith(KEY_PREFIX):
        return tokens_check_key(key=token), None
    try:
        claims = jwt.decode(
            token,
            signing_key(),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "tid"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("The access token expired; request a new one.") from None
    except jwt.InvalidTokenError:
        raise TokenError("Invalid access token.") from None
    _check_age(claims)
    row = (
        models.ApiToken.objects.select_related("user")
        .filter(pk=claims["tid"], user_id=claims["sub"], user__is_active=True)
        .first()
    )
    if row is None:
        raise TokenError("The API key of this access token was revoked.")
    issued, expires = claims["iat"], claims["exp"]
    assert isinstance(issued, int | float) and isinstance(expires, int | float)  # checked above
    return row, min(float(expires), float(issued) + ACCESS_TOKEN_SECONDS)

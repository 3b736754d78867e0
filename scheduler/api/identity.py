"""`POST /identity/token`: trade an API key for an access token (IBM Cloud IAM style)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Form, NinjaAPI, Router

from scheduler import auth_tokens
from scheduler.api import throttle
from scheduler.api.schemas import Error, TokenOut

router = Router(tags=["identity"])


@router.post("/token", response={200: TokenOut, 400: Error, 401: Error, 429: Error}, auth=None)
def identity_token(
    request: HttpRequest,
    apikey: Form[str],
    grant_type: Form[str] = "",
    response_type: Form[str] = "",
) -> dict[str, Any]:
    """A JWT (HS256, one hour) for the user of `apikey`."""
    token = throttle.check_secret(
        request,
        apikey,
        lambda secret: auth_tokens.tokens_check_key(key=secret),
        code="invalid_apikey",
    )
    access = auth_tokens.access_token_create(token=token)
    return {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "expiration": access.expiration,
    }


def build_identity() -> NinjaAPI:
    from scheduler.api import errors

    api = NinjaAPI(
        title="qdash identity", urls_namespace="qdash-identity", docs_url=None, openapi_url=None
    )
    errors.install(api)
    api.add_router("/", router)
    return api

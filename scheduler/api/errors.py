"""API refusals: every one is a 4xx JSON body `{"code", "message"}`."""

from __future__ import annotations

import logging

import redis.exceptions
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django_guid import get_guid
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from scheduler.policy import model as m
from scheduler.submission import (
    TOO_MANY_DECODES,
    TOO_MANY_QUEUED,
    TOO_MANY_SESSIONS,
    SubmissionError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal with its HTTP status, a stable code, a message for people, and maybe
    headers (`Retry-After` on a 429)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


# HTTP status of each submission refusal; the rest are 400.
SUBMISSION_STATUS = {
    m.UNKNOWN_BACKEND: 404,
    m.UNKNOWN_SESSION: 404,
    m.SESSION_CLOSED: 409,
    m.ALLOCATION_EXHAUSTED: 409,
    TOO_MANY_QUEUED: 429,
    TOO_MANY_SESSIONS: 429,
    TOO_MANY_DECODES: 429,
}


def from_submission(error: SubmissionError) -> ApiError:
    headers = {}
    if error.code == TOO_MANY_DECODES:  # a decode ends within its time cap
        headers["Retry-After"] = str(settings.QDASH_DECODE["SECONDS"])
    return ApiError(SUBMISSION_STATUS.get(error.code, 400), error.code, error.message, headers)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found.")


# Errors of a service that is away for a moment: the request is answered 503, to retry.
UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def install(api: NinjaAPI) -> None:
    """Answer every refusal of `api` in the one error format."""

    def reply(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
        return api.create_response(request, {"code": code, "message": message}, status=status)

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = reply(request, exc.status, exc.code, exc.message)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    @api.exception_handler(Exception)
    def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        """A bug: the log has the traceback; the caller gets the request id, nothing more."""
        request_id = get_guid()
        if isinstance(exc, UNAVAILABLE):
            # The database or Redis (the cache behind the rate limits) is away, restarting
            # or closed this connection: nothing was stored, and the same request will do
            # once it is back.
            log.warning("API request %s: a service is unavailable: %s", request_id, exc)
            body = {
                "code": "unavailable",
                "message": "A service qdash needs is unavailable for a moment; retry the request.",
                "request_id": request_id,
            }
            response = api.create_response(request, body, status=503)
            response["Retry-After"] = "1"
            return response
        log.error("API error (request %s)", request_id, exc_info=exc)
        body = {
            "code": "server_error",
            "message": f"An unexpected error on the server; its request id is {request_id}.",
            "request_id": request_id,
        }
        return api.create_response(request, body, status=500)

    @api.exception_handler(SubmissionError)
    def submission_error(request: HttpRequest, exc: SubmissionError) -> HttpResponse:
        return api_error(request, from_submission(exc))

    @api.exception_handler(AuthenticationError)
    def unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return reply(
            request, 401, "unauthorized", "Send 'Authorization: Bearer <access token or API key>'."
        )

    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg')}"
            for error in exc.errors
        )
        return reply(request, 400, "invalid_request", problems or "Invalid request.")

    @api.exception_handler(Http404)
    def missing(request: HttpRequest, exc: Http404) -> HttpResponse:
        return reply(request, 404, "not_found", str(exc) or "Not found.")

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return reply(request, exc.status_code, "http_error", str(exc))

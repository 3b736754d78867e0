"""API refusals: every one is a 4xx JSON body `{"code", "message"}`."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from scheduler.policy import model as m
from scheduler.submission import TOO_MANY_QUEUED, SubmissionError


class ApiError(Exception):
    """A refusal with its HTTP status, a stable code and a message for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# HTTP status of each submission refusal; the rest are 400.
SUBMISSION_STATUS = {
    m.UNKNOWN_BACKEND: 404,
    m.UNKNOWN_SESSION: 404,
    m.SESSION_CLOSED: 409,
    TOO_MANY_QUEUED: 429,
}


def from_submission(error: SubmissionError) -> ApiError:
    return ApiError(SUBMISSION_STATUS.get(error.code, 400), error.code, error.message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found.")


def install(api: NinjaAPI) -> None:
    """Answer every refusal of `api` in the one error format."""

    def reply(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
        return api.create_response(request, {"code": code, "message": message}, status=status)

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return reply(request, exc.status, exc.code, exc.message)

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

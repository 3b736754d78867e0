"""`/jobs`: submit (safe to retry), list, read, cancel, delete, results, logs, metrics, tags."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pydantic
import qiskit
from django.conf import settings
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router, Status

from scheduler import circuits, models, selectors, services
from scheduler.api.auth import Principal, principal
from scheduler.api.backends import backend_or_404
from scheduler.api.errors import ApiError, not_found
from scheduler.api.present import failure_text, iso, job_json
from scheduler.api.schemas import REFUSALS, JobCreated, JobIn, JobOut, JobsOut, TagsIn
from scheduler.clock import ticks_seconds
from scheduler.policy import model as m
from scheduler.submission import jobs_submit, tags_check, warning_text

router = Router(tags=["jobs"])
MAX_PAYLOAD_BYTES = 10 * 2**20
MAX_OFFSET = 2**31 - 1  # past any list; a larger one would overflow the database
# Off by default: users do submit one circuit many times in a row. A job is stored
# in the transaction that answers, so a 5xx answer (which the client retries) means
# nothing was stored.
DEDUPE_SECONDS = 0


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def job_for_user(request: HttpRequest, uid: str) -> models.Job:
    """The caller's job `uid`; another user's is as unknown as a missing one."""
    job = (
        models.Job.objects.select_related("backend", "instance", "session")
        .filter(uid=uid, owner=principal(request).user)
        .first()
    )
    if job is None:
        raise not_found("Job")
    return job


# ---------------------------------------------------------------------- submit
@router.post(
    "/jobs",
    response={200: JobCreated, 201: JobCreated} | REFUSALS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": JobIn.model_json_schema()}},
        }
    },
)
def jobs_post(request: HttpRequest) -> Status[dict[str, Any]]:
    """Queue a sampler or estimator job; `params` as the client's RuntimeEncoder sent them.

    A retry is answered with the job the first attempt created: the same
    `Idempotency-Key` header, or, when QDASH_JOB_DEDUPE_SECONDS is set, the same
    body from the same user within that many seconds.
    """
    caller = principal(request)
    payload = _job_payload(request)
    node = caller.require_instance()
    if payload.program_id not in circuits.PROGRAMS:
        raise ApiError(
            400,
            "unknown_program",
            f"Unknown program {payload.program_id!r}; use sampler, estimator or executor.",
        )
    uid = _idempotent_uid(caller, request.headers.get("Idempotency-Key"))
    earlier = _earlier_attempt(caller, payload, uid)
    if earlier is not None:
        return Status(200, _created(earlier))
    backend = backend_or_404(payload.backend)
    _check_session_owner(caller, payload.session_id)
    try:
        submitted = jobs_submit(
            owner=caller.user,
            backend=backend,
            instance=node,
            program_id=payload.program_id,
            params=payload.params,
            session_id=payload.session_id,
            start_session=payload.start_session,
            max_execution_time=_limit(payload),
            tags=payload.tags,
            private=payload.private,
            uid=uid,
        )
    except circuits.CircuitError as error:  # bad options; nothing was stored
        raise ApiError(400, "invalid_circuit", str(error)) from None
    except (IntegrityError, ValueError):  # maybe a concurrent retry with the same key won
        job = _earlier_attempt(caller, payload, uid) if uid else None
        if job is None:
            raise
        return Status(200, _created(job))
    return Status(201, _created(submitted.job, [warning_text(w) for w in submitted.warnings]))


def _job_payload(request: HttpRequest) -> JobIn:
    limit = _setting("QDASH_MAX_PAYLOAD_BYTES", MAX_PAYLOAD_BYTES)
    too_big = ApiError(413, "payload_too_large", f"The request body exceeds {limit} bytes.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise too_big
    # Read the stream: `request.body` would refuse anything over DATA_UPLOAD_MAX_MEMORY_SIZE.
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_big
    try:
        data = json.loads(raw)
        return JobIn.model_validate(data)
    except RecursionError:
        raise ApiError(400, "invalid_json", "The request body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as error:
        if isinstance(error, pydantic.ValidationError):
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
            )
            raise ApiError(400, "invalid_request", problems) from None
        raise ApiError(400, "invalid_json", "The request body is not JSON.") from None


def _limit(payload: JobIn) -> timedelta | None:
    seconds = payload.cost or payload.max_execution_time
    return timedelta(seconds=seconds) if seconds else None


def _idempotent_uid(caller: Principal, key: str | None) -> str | None:
    if not key:
        return None
    return "q" + hashlib.sha256(f"{caller.user.pk}:{key}".encode()).hexdigest()[:24]


def _earlier_attempt(caller: Principal, payload: JobIn, uid: str | None) -> models.Job | None:
    jobs = models.Job.objects.select_related("backend", "session")
    if uid is not None:
        return jobs.filter(uid=uid, owner=caller.user).first()
    window = _setting("QDASH_JOB_DEDUPE_SECONDS", DEDUPE_SECONDS)
    if window <= 0:
        return None
    recent = jobs.filter(
        owner=caller.user,
        backend__name=payload.backend,
        program_id=payload.program_id,
        submitted_at__gte=timezone.now() - timedelta(seconds=window),
    )
    for job in recent.order_by("-submitted_at"):
        session = job.session.uid if job.session else None
        same_session = (
            session == job.uid if payload.start_session else session == payload.session_id
        )
        if (
            same_session
            and job.max_execution_time == _limit(payload)
            and list(job.tags) == payload.tags
            and job.params == payload.params
        ):
            return job
    return None


def _check_session_owner(caller: Principal, session_id: str | None) -> None:
    if session_id is None:
        return
    owner = models.Session.objects.filter(uid=session_id).values_list("owner_id", flat=True)
    if owner.exists() and owner.first() != caller.user.pk:
        raise ApiError(404, m.UNKNOWN_SESSION, "Unknown session.")


def _created(job: models.Job, warnings: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": job.uid,
        "backend": job.backend.name,
        "session_id": job.session.uid if job.session else None,
        "warnings": warnings or [],
    }


# ------------------------------------------------------------------------ read
@router.get("/jobs", response={200: JobsOut} | REFUSALS)
def jobs_list(
    request: HttpRequest,
    backend: str | None = None,
    pending: bool | None = None,
    program: str | None = None,
    session_id: str | None = None,
    tags: list[str] = Query([]),  # noqa: B008 - ninja's way to declare a repeated parameter
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    sort: Literal["ASC", "DESC"] = "DESC",
    limit: int = 50,
    offset: int = 0,
    exclude_params: bool = True,
) -> dict[str, Any]:
    """The caller's jobs in the selected instance, newest first."""
    caller = principal(request)
    jobs = models.Job.objects.select_related("backend", "instance", "session").filter(
        owner=caller.user
    )
    if caller.instance is not None:
        jobs = jobs.filter(instance=caller.instance)
    if backend:
        jobs = jobs.filter(backend__name=backend)
    if pending is not None:
        active = [m.QUEUED, m.RUNNING]
        jobs = jobs.filter(status__in=active) if pending else jobs.exclude(status__in=active)
    if program:
        jobs = jobs.filter(program_id=program)
    if session_id:
        jobs = jobs.filter(session__uid=session_id)
    if tags:  # jobs carrying every tag; JSON list containment is not portable SQL
        wanted = set(tags)
        jobs = jobs.filter(
            pk__in=[pk for pk, have in jobs.values_list("pk", "tags") if wanted <= set(have)]
        )
    if created_after:
        jobs = jobs.filter(submitted_at__gte=_utc(created_after, "created_after"))
    if created_before:
        jobs = jobs.filter(submitted_at__lte=_utc(created_before, "created_before"))
    limit = max(1, min(limit, 200))
    offset = max(0, min(offset, MAX_OFFSET))
    order = ["submitted_at", "id"] if sort == "ASC" else ["-submitted_at", "-id"]
    page = jobs.order_by(*order)[offset : offset + limit]
    return {
        "jobs": [job_json(job) for job in page],
        "count": jobs.count(),
        "limit": limit,
        "offset": offset,
    }


def _utc(moment: datetime, name: str) -> datetime:
    """A query's instant in UTC (no offset: UTC). Databases differ in the offsets they
    accept (PostgreSQL's stop at 15:59), so none reaches them."""
    if timezone.is_naive(moment):
        return timezone.make_aware(moment, UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ApiError(400, "invalid_parameter", f"{name} is out of range.") from None


@router.get("/jobs/{uid}", response={200: JobOut} | REFUSALS)
def jobs_get(request: HttpRequest, uid: str, exclude_params: bool = False) -> dict[str, Any]:
    return job_json(job_for_user(request, uid), with_params=not exclude_params)


@router.get("/jobs/{uid}/results", response={200: None} | REFUSALS)
def jobs_results(request: HttpRequest, uid: str) -> HttpResponse:
    """The PrimitiveResult as RuntimeEncoder JSON; for a failed job, why it failed.

    A private job's result is handed out once and erased; later calls get an empty body.
    """
    job = job_for_user(request, uid)
    if job.status == m.COMPLETED and job.private:
        return _private_result(job)
    if job.status == m.COMPLETED and job.result is not None:
        text = job.result if isinstance(job.result, str) else json.dumps(job.result)
        return HttpResponse(text, content_type="application/json")
    if job.status in (m.FAILED, m.CANCELLED) and job.error:
        return HttpResponse(failure_text(job), content_type="text/plain; charset=utf-8")
    raise ApiError(409, "no_result", f"Job {uid} has no result (status {job.status}).")


def _private_result(job: models.Job) -> HttpResponse:
    erased = models.Job.objects.filter(pk=job.pk, result__isnull=False).update(result=None)
    if not erased or job.result is None:  # handed out before, maybe just now to a racing call
        return HttpResponse("", content_type="application/json")
    text = job.result if isinstance(job.result, str) else json.dumps(job.result)
    return HttpResponse(text, content_type="application/json")


@router.get("/jobs/{uid}/logs", response={200: None} | REFUSALS)
def jobs_logs(request: HttpRequest, uid: str) -> HttpResponse:
    """The job's lines of the scheduler's event log."""
    job = job_for_user(request, uid)
    lines = [
        f"{iso(event.at)} {event.kind} {json.dumps(event.detail, sort_keys=True)}"
        for event in job.events.order_by("id")
    ]
    if job.error_message:
        lines.append(job.error_message)
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@router.get("/jobs/{uid}/metrics", response={200: dict} | REFUSALS)
def jobs_metrics(request: HttpRequest, uid: str) -> dict[str, Any]:
    """Timestamps, usage, and for a queued job its queue position and estimated start."""
    job = job_for_user(request, uid)
    usage = ticks_seconds(
        sum(
            job.usagecharge_set.filter(kind=models.UsageCharge.Kind.RUN).values_list(
                "microseconds", flat=True
            )
        )
    )
    waiting = selectors.job_waiting(job) if job.status == m.QUEUED else None
    position = waiting.position if waiting is not None else None
    start = waiting.estimated_start if waiting is not None else None
    final = job.status in m.FINAL_STATES
    return {
        "timestamps": {
            "created": iso(job.submitted_at),
            "running": iso(job.started_at),
            "finished": iso(job.ended_at),
        },
        "usage": {
            "quantum_seconds": usage,
            "seconds": usage,
            "qpu_charge_time_seconds": usage,
            "status": "completed" if final else "pending",
        },
        "position_in_queue": position,
        "position_in_provider": position,
        # Why the position is null, or what it is, never left to guess: "planned",
        # "being_computed" (the job is newer than the scheduler's plan: the next plan,
        # within a second or two, places it), "not_started_by_plan" or "not_queued".
        "position_status": waiting.position_state if waiting is not None else "not_queued",
        "position_detail": (
            waiting.position_text(job.backend.name) if waiting is not None else "not queued"
        ),
        "estimated_start_time": iso(start),
        "executions": None,
        "num_circuit_instructions": None,
        # The session's compiled circuits this job reused (scheduler.devices.timing).
        "caching": {
            "circuits": len(job.circuit_keys or []),
            "cached_circuits": job.cached_circuits,
            "seconds_saved": job.cache_saved.total_seconds(),
        },
        "estimated_running_time_seconds": (
            None if job.expected_duration is None else job.expected_duration.total_seconds()
        ),
        "qiskit_version": qiskit.__version__,
    }


# ----------------------------------------------------------------------- write
@router.post("/jobs/{uid}/cancel", response={204: None} | REFUSALS)
def jobs_cancel(request: HttpRequest, uid: str) -> HttpResponse:
    job = job_for_user(request, uid)
    if job.status in m.FINAL_STATES:
        raise ApiError(409, "job_final", f"Job {uid} is already {job.status}.")
    services.jobs_cancel(job=job)
    return HttpResponse(status=204)


@router.delete("/jobs/{uid}", response={204: None} | REFUSALS)
def jobs_delete(request: HttpRequest, uid: str) -> HttpResponse:
    """Delete a job with its log lines; a queued or running one is cancelled first, as in
    Qiskit Runtime. Until the scheduler has applied the cancel, nothing is deleted (409)."""
    job = job_for_user(request, uid)
    if job.status not in m.FINAL_STATES:
        job = services.jobs_cancel(job=job)
    if job.status not in m.FINAL_STATES:
        raise ApiError(
            409, "job_not_final", f"Job {uid} is still {job.status}; its cancel is pending."
        )
    job.delete()
    return HttpResponse(status=204)


@router.put("/jobs/{uid}/tags", response={204: None} | REFUSALS)
def jobs_tags(request: HttpRequest, uid: str, payload: TagsIn) -> HttpResponse:
    job = job_for_user(request, uid)
    tags_check(payload.tags)
    models.Job.objects.filter(pk=job.pk).update(tags=payload.tags)
    return HttpResponse(status=204)

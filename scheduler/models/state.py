"""The state the leader decides from: backends, the instance tree and its allocations,
reservations, sessions, jobs, usage charges, the event log, API tokens and the inputs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from scheduler.clock import ticks_seconds
from scheduler.policy import model as rules

INSTANCE_PATH = RegexValidator(
    r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$",
    "Use hub, hub/group or hub/group/project (letters, digits, _ . -).",
)


class Backend(models.Model):
    """A quantum backend (simulated with Qiskit Aer); runs one job at a time."""

    class Status(models.TextChoices):
        ONLINE = rules.ONLINE
        PAUSED = rules.PAUSED

    name = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ONLINE)
    num_qubits = models.PositiveIntegerField(default=5)
    max_runtime = models.DurationField(
        null=True, blank=True, help_text="Runtime limit of one job; empty = the system default."
    )
    job_overhead = models.DurationField(help_text="Modeled QPU time every job costs.")
    shot_time = models.DurationField(help_text="Modeled QPU time of one shot of one circuit.")
    description = models.CharField(max_length=200, blank=True)
    # What the backend is (scheduler.devices): a device profile of the installed client's
    # fake provider, or a driver (any Qiskit BackendV2); neither: an ideal simulator.
    profile = models.CharField(
        max_length=64,
        blank=True,
        help_text="A device of qiskit-ibm-runtime's fake provider (its topology, calibration "
        "and noise); empty: an ideal, all-to-all, noiseless simulator.",
    )
    driver = models.CharField(
        max_length=200,
        blank=True,
        help_text="Dotted path of a Qiskit BackendV2 class that runs this backend's jobs.",
    )
    driver_args = models.JSONField(
        default=dict, blank=True, help_text="Keyword arguments of the driver, as JSON."
    )
    compile_time = models.DurationField(
        default=timedelta(0),
        help_text="Modeled QPU time to compile one circuit structure; a session reuses "
        "what its earlier jobs compiled.",
    )
    offline_reason = models.TextField(
        blank=True, editable=False, help_text="Why the backend's driver could not be loaded."
    )
    # The span the active session holds this backend idle (docs/rules.md).
    hold_session = models.ForeignKey(
        "Session", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hold_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Instance(models.Model):
    """A node of the instance tree: a hub, a hub/group, or a hub/group/project."""

    path = models.CharField(max_length=200, unique=True, validators=[INSTANCE_PATH])
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    share = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="instances",
        help_text="Users who may submit in this project.",
    )

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path

    @property
    def level(self) -> str:
        return ("hub", "group", "project")[self.path.count("/")]

    @property
    def is_project(self) -> bool:
        return self.path.count("/") == 2

    def clean(self) -> None:
        parent_path = self.path.rpartition("/")[0]
        if (self.parent.path if self.parent else "") != parent_path:
            raise ValidationError({"parent": f"The parent of {self.path} is {parent_path or '-'}."})


class Allocation(models.Model):
    """A usage limit on one instance-tree node: `seconds` of usage per period
    (docs/rules.md, "Allocations"). A node has at most one.

    The period is the rolling usage window, or fixed: `[start + k*length, start +
    (k+1)*length)` when `period_start` and `period_length` are set. Operators change it
    through `scheduler.allocations`, which tells the scheduler leader.
    """

    class Enforce(models.TextChoices):
        QUEUE = rules.QUEUE, "queue (jobs wait)"
        SAFE = rules.SAFE, "safe (a job starts only if it can finish within what is left)"
        REFUSE = rules.REFUSE, "refuse (submissions are refused once it is used up)"

    instance = models.OneToOneField(
        Instance, on_delete=models.PROTECT, related_name="allocation", verbose_name="node"
    )
    seconds = models.FloatField(
        validators=[MinValueValidator(0.0)], help_text="Usage allowed per period, in seconds."
    )
    enforce = models.CharField(max_length=8, choices=Enforce.choices, default=Enforce.QUEUE)
    period_start = models.DateTimeField(
        null=True, blank=True, help_text="Fixed periods begin here; empty = the rolling window."
    )
    period_length = models.DurationField(
        null=True, blank=True, help_text="Length of one fixed period (with a period start)."
    )

    class Meta:
        ordering = ["instance__path"]
        constraints = [
            models.CheckConstraint(
                condition=Q(seconds__gte=0), name="allocation_seconds_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(period_start__isnull=True, period_length__isnull=True)
                | Q(period_start__isnull=False, period_length__gt=timedelta(0)),
                name="allocation_period_has_a_length",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instance} {self.seconds:g}s ({self.enforce})"


class Reservation(models.Model):
    """A window [start, end) on one backend for one project instance."""

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="reservations")
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="reservations")
    start = models.DateTimeField()
    end = models.DateTimeField()
    exclusive = models.BooleanField(
        default=False, help_text="Nothing else may start during the window, even when idle."
    )
    note = models.CharField(max_length=200, blank=True)
    started = models.BooleanField(default=False, editable=False)
    ended = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")), name="reservation_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instance} on {self.backend} from {self.start:%Y-%m-%d %H:%M}"


class Session(models.Model):
    """A Qiskit Runtime session (or batch) on one backend for one instance."""

    class State(models.TextChoices):
        OPEN = rules.OPEN
        ACTIVE = rules.ACTIVE
        INACTIVE = rules.INACTIVE
        CLOSED = rules.CLOSED

    class Mode(models.TextChoices):
        DEDICATED = rules.DEDICATED
        BATCH = rules.BATCH

    uid = models.CharField(max_length=64, unique=True)
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="sessions")
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="sessions")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="qsessions",
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.DEDICATED)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    accepting_jobs = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    max_ttl = models.DurationField(null=True, blank=True, help_text="Effective maximum timeout.")
    interactive_ttl = models.DurationField()
    ttl_deadline = models.DateTimeField(null=True, blank=True)
    interactive_deadline = models.DateTimeField(null=True, blank=True)
    open_deadline = models.DateTimeField(null=True, blank=True)
    bound_reservation = models.ForeignKey(
        Reservation, null=True, blank=True, on_delete=models.SET_NULL, related_name="bound_sessions"
    )
    closed_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return self.uid


class Job(models.Model):
    """A primitive job: a PUB list for one backend, maybe inside a session."""

    class Status(models.TextChoices):
        QUEUED = rules.QUEUED
        RUNNING = rules.RUNNING
        COMPLETED = rules.COMPLETED
        FAILED = rules.FAILED
        CANCELLED = rules.CANCELLED

    class Lane(models.TextChoices):
        RESERVATION = rules.RESERVATION
        SESSION = rules.SESSION
        FAIR_SHARE = rules.FAIR_SHARE

    uid = models.CharField(max_length=64, unique=True)
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="jobs")
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="jobs")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )
    program_id = models.CharField(max_length=32, default="sampler")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    lane = models.CharField(max_length=16, choices=Lane.choices, blank=True)
    error = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    submitted_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(
        null=True,
        blank=True,
        help_text="Known run time (simulations); empty = runs until the executor reports.",
    )
    expected_duration = models.DurationField(
        null=True, blank=True, help_text="Modeled QPU time, used for estimates."
    )
    max_execution_time = models.DurationField(null=True, blank=True)
    runtime_limit = models.DurationField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="Primitive inputs.")
    result = models.JSONField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    private = models.BooleanField(
        default=False,
        help_text="Params never shown through the API; the result is handed out once, then erased.",
    )
    # The timing model (scheduler.devices.timing): the job's circuit structures, and those
    # its session had compiled already when it was submitted.
    circuit_keys = models.JSONField(default=list, blank=True)
    cached_circuits = models.PositiveIntegerField(default=0)
    cache_saved = models.DurationField(default=timedelta(0))

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["status", "backend"]),
            models.Index(fields=["submitted_at"]),
            models.Index(fields=["backend", "started_at"]),
            # The per-user limit of queued jobs counts these at every submission.
            models.Index(fields=["owner", "status"]),
            # Rollups read a day's finished jobs; prune, the oldest finished ones.
            models.Index(fields=["ended_at"]),
            # The API's job list: a caller's jobs in an instance, newest first, and their count.
            models.Index(fields=["owner", "instance", "submitted_at"]),
            # Their count with a backend or state filter, from the index alone: without
            # it, every one of the caller's jobs in the instance is read from the table.
            models.Index(fields=["owner", "instance", "backend", "status"]),
        ]

    def __str__(self) -> str:
        return self.uid


class UsageCharge(models.Model):
    """One run or hold, charged to an instance when it ended (docs/rules.md)."""

    class Kind(models.TextChoices):
        RUN = "run"
        HOLD = "hold"
        PRIOR = "prior"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="charges")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    microseconds = models.BigIntegerField()
    ended_at = models.DateTimeField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        # Covers the rolling-window sum per instance that every scheduling step reads.
        indexes = [models.Index(fields=["ended_at", "instance", "microseconds"])]

    def __str__(self) -> str:
        return f"{self.instance} {self.kind} {ticks_seconds(self.microseconds):g}s"


class Event(models.Model):
    """The log of every state change the scheduler made, in order."""

    at = models.DateTimeField()
    kind = models.CharField(max_length=40)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    backend = models.ForeignKey(
        Backend, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    # The log outlives a deleted reservation: its events keep what it was in `detail`.
    reservation = models.ForeignKey(
        Reservation, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["at"]), models.Index(fields=["kind", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.kind}"


class ApiToken(models.Model):
    """A user's API key for the REST API; only the SHA-256 of the secret is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.user} {self.name or self.pk}"


class Input(models.Model):
    """A change a web process committed, waiting for the scheduler leader to apply it.

    Web processes never run the rules: they store the job, session or operator
    change with its input in one short transaction and wake the leader, which
    applies inputs in the order they were committed and deletes them in the
    transaction that writes their effects (docs/rules.md, "The live system").
    """

    class Kind(models.TextChoices):
        SUBMIT = "submit"
        CREATE_SESSION = "create_session"
        CANCEL_JOB = "cancel_job"
        CLOSE_SESSION = "close_session"
        CANCEL_SESSION = "cancel_session"
        BACKEND_STATUS = "backend_status"
        BACKEND = "backend"  # a backend was added or its settings changed
        RESERVATION = "reservation"  # a reservation was added, changed or deleted
        SHARE = "share"  # an instance's share changed
        ALLOCATION = "allocation"  # a node's allocation was set or removed
        FINISH_JOB = "finish_job"  # an executor reports a job's end

    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(max_length=200, blank=True)  # backend, reservation id, instance
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.target or self.job_id or self.session_id}"

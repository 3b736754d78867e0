"""What the leader and the cluster's processes write beside the state: the leader's
step journal, the published plan, queue samples, executions and the processes' heartbeats."""

from __future__ import annotations

from django.db import models

from scheduler.models.state import Backend, Job


class StepRecord(models.Model):
    """What one leader step did to its policy, for standbys to do alike.

    The leader writes one row in the transaction of every step that changed
    something: the policy's calls in order (`ops`, pickled: the instants with the
    actions applied at each, the sessions and backends recalled from their rows),
    the keys of the rows the step named, and a digest of the state after it.
    A standby that applied every row before this one applies it and compares the
    digest; `loaded` says the step began from a full load (a new leader, a
    conflict), which a standby cannot follow: it loads too. Rows are kept a few
    minutes (`scheduler.engine.journal.KEEP`).
    """

    seq = models.BigIntegerField(unique=True)  # the previous row's + 1, by the leader
    at = models.DateTimeField()
    loaded = models.BooleanField(default=False)
    inputs = models.PositiveIntegerField(default=0)  # inputs the step applied
    ops = models.BinaryField()
    keys = models.JSONField(default=dict)  # {"jobs": {uid: pk}, "sessions": {uid: pk}}
    digest = models.JSONField(default=dict)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"step {self.seq}"


class PublishedPlan(models.Model):
    """The newest plan the leader published: when, how many pages, each backend's state.

    One row. The entries of queued jobs are in `PlanPage` rows, hashed by job id, so a
    page reads one job's entry without loading the whole plan.
    """

    at = models.DateTimeField(help_text="The instant the plan starts from.")
    made_at = models.DateTimeField(help_text="When the leader published it.")
    pages = models.PositiveIntegerField()
    backends = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"plan at {self.at:%H:%M:%S} ({self.pages} pages)"


class PlanPage(models.Model):
    """Plan entries of the queued jobs whose id hashes to this page (`scheduler.plans`)."""

    number = models.PositiveIntegerField(primary_key=True)
    entries = models.TextField(
        help_text="JSON: job id -> [backend, lane, position, start, ahead, allocation]"
    )

    def __str__(self) -> str:
        return f"plan page {self.number}"


class QueueSample(models.Model):
    """A backend's queue per lane at one moment, and the jobs that entered and started
    each lane so far: what the queue-flow charts and the backend cards draw.

    The leader writes one row per backend at most every few seconds, updating the
    newest row in between, so the newest row is always the queue as committed.
    """

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField()
    reservation = models.PositiveIntegerField(default=0)
    session = models.PositiveIntegerField(default=0)
    fair_share = models.PositiveIntegerField(default=0)
    entered_reservation = models.PositiveBigIntegerField(default=0)
    entered_session = models.PositiveBigIntegerField(default=0)
    entered_fair_share = models.PositiveBigIntegerField(default=0)
    started_reservation = models.PositiveBigIntegerField(default=0)
    started_session = models.PositiveBigIntegerField(default=0)
    started_fair_share = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["backend", "at"]
        indexes = [models.Index(fields=["backend", "-at"])]

    def __str__(self) -> str:
        return f"{self.backend} at {self.at:%H:%M:%S}"


class Execution(models.Model):
    """One attempt at running a started job's circuits: the executors' ledger.

    An executor worker writes a row when it starts running a job (holding the
    job's execution lock) and completes it when it stops; a worker that died
    leaves `ended_at` empty. A job has one row per attempt.
    """

    class Outcome(models.TextChoices):
        WRITTEN = "written", "result written"
        FAILED = "failed", "failed; error written"
        DISCARDED = "discarded", "finished; the job had a result or had ended already"
        ABANDONED = "abandoned", "stopped: lost its lock, or the job ended meanwhile"
        LOST = "lost", "its worker stopped sending heartbeats"
        LIMIT = "limit", "stopped at an execution cap; error written"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="executions")
    worker = models.CharField(max_length=100)
    attempt = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.job_id} attempt {self.attempt} on {self.worker}"


class Process(models.Model):
    """A process of the deployment as it last reported itself (the cluster page).

    Every web, scheduler and executor process writes its row every few seconds; a
    row whose heartbeat is old belongs to a process that stopped or hangs.
    """

    class Kind(models.TextChoices):
        WEB = "web"
        SCHEDULER = "scheduler"
        EXECUTOR = "executor"
        EMBEDDED = "embedded", "web + scheduler + executor"

    name = models.CharField(max_length=100, unique=True)  # host:pid
    kind = models.CharField(max_length=16, choices=Kind.choices)
    host = models.CharField(max_length=100)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    leading_since = models.DateTimeField(null=True, blank=True)  # schedulers: leader since
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["kind", "name"]
        verbose_name_plural = "processes"

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

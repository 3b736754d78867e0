"""Demo data and demo traffic, so a fresh qdash shows queues moving."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from scheduler import circuits, models, services
from scheduler.devices import device as devices
from scheduler.devices.device import Device, device_of
from scheduler.policy import model as m
from scheduler.services import jobs_cancel, sessions_close
from scheduler.submission import SubmissionError, jobs_submit, sessions_create

log = logging.getLogger(__name__)

DEMO_TAG = "demo"  # on every job the demo traffic submits
BACKENDS = [
    # name, profile, qubits, per-job overhead (s), compile time (s), per-shot time (µs), about
    ("sim_lima", "", 5, 2.0, 0.5, 250, "ideal: all-to-all and noiseless, for first circuits"),
    ("sim_kyiv", "kyiv", 127, 4.0, 1.0, 250, "127-qubit Eagle r3, heavy-hex, ECR"),
    ("sim_fez", "fez", 156, 3.0, 1.0, 250, "156-qubit Heron r2, heavy-hex, CZ"),
]
SHARES = {
    "ibm-q": 3,
    "partner": 1,
    "ibm-q/open": 1,
    "ibm-q/research": 2,
    "ibm-q/open/main": 1,
    "ibm-q/research/qec": 2,
    "ibm-q/research/chem": 1,
    "partner/lab": 1,
    "partner/lab/alpha": 1,
}
TRAFFIC_USER = "demo-traffic"  # the demo traffic's own account: it never uses a person's queue
USERS = {  # username: (password, staff, instances)
    "admin": ("admin", True, ["ibm-q/open/main"]),
    "alice": ("alice", False, ["ibm-q/research/qec", "ibm-q/open/main"]),
    "bob": ("bob", False, ["ibm-q/research/chem"]),
    "carol": ("carol", False, ["partner/lab/alpha"]),
}


@transaction.atomic
def demo_load(*, now: datetime | None = None) -> None:
    """Backends, an instance tree with unequal shares, users and two reservations."""
    now = now or timezone.now()
    for name, profile, qubits, overhead, compile_s, shot_us, description in BACKENDS:
        backend, created = models.Backend.objects.get_or_create(
            name=name,
            defaults={
                "num_qubits": qubits,
                "profile": profile,
                "job_overhead": timedelta(seconds=overhead),
                "compile_time": timedelta(seconds=compile_s),
                "shot_time": timedelta(microseconds=shot_us),
                "description": description,
            },
        )
        if not created and profile and not (backend.profile or backend.driver):
            # A demo database from before the backends had real devices.
            backend.profile, backend.num_qubits, backend.description = profile, qubits, description
            backend.save(update_fields=["profile", "num_qubits", "description"])
    for path, share in SHARES.items():
        node = services.instances_ensure(path=path)
        if node.share != share:
            node.share = share
            node.save(update_fields=["share"])
    User = get_user_model()
    for username, (password, staff, paths) in USERS.items():
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": staff, "is_superuser": staff}
        )
        if created:
            user.set_password(password)
            user.save()
        for path in paths:
            models.Instance.objects.get(path=path).members.add(user)
    robot, created = User.objects.get_or_create(username=TRAFFIC_USER)
    if created:
        robot.set_unusable_password()  # it submits; nobody logs in as it
        robot.save()
    projects = [node for node in models.Instance.objects.all() if node.is_project]
    robot.instances.add(*projects)
    if not models.Reservation.objects.exists():
        # Relative to now, so a demo started at any minute shows the first one coming.
        start = now.replace(second=0, microsecond=0) + timedelta(minutes=10)
        models.Reservation.objects.create(
            backend=models.Backend.objects.get(name="sim_kyiv"),
            instance=models.Instance.objects.get(path="partner/lab/alpha"),
            start=start,
            end=start + timedelta(minutes=20),
            note="partner lab calibration study",
        )
        models.Reservation.objects.create(
            backend=models.Backend.objects.get(name="sim_lima"),
            instance=models.Instance.objects.get(path="ibm-q/research/qec"),
            start=start + timedelta(hours=2),
            end=start + timedelta(hours=2, minutes=30),
            exclusive=True,
            note="QEC experiment, exclusive",
        )


@functools.lru_cache(maxsize=64)
def _isa(device: Device, width: int, *, measure: bool) -> QuantumCircuit:
    """A GHZ circuit transpiled for `device` (once per width)."""
    manager = generate_preset_pass_manager(
        optimization_level=1, target=devices.target(device), seed_transpiler=width
    )
    return manager.run(circuits.ghz(width, measure=measure))


class Traffic:
    """A random mix of what researchers do: jobs, sessions both ways, bursts, cancels."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.sessions: list[tuple[models.Session, int]] = []  # open sessions, jobs left
        self.submitted: deque[str] = deque(maxlen=500)  # its newest jobs, the ones it may cancel

    def step(self, *, plain: bool = False) -> None:
        """Do one thing a researcher might do (`plain`: submit one job outside any session)."""
        rng = self.rng
        choice = 1.0 if plain else rng.random()
        try:
            if self.sessions and choice < 0.45:
                self._session_job()
            elif choice < 0.55:
                self._start_session()
            elif choice < 0.60:
                for _ in range(rng.randint(3, 6)):
                    self._plain_job()
            elif choice < 0.65:
                self._cancel_one()
            else:
                self._plain_job()
        except SubmissionError as error:
            log.debug("demo traffic refused: %s", error.message)

    def _member(self) -> tuple[models.Instance, AbstractBaseUser | None]:
        """A project of the traffic's own account: it submits as itself, in that project."""
        robot = get_user_model().objects.get(username=TRAFFIC_USER)
        node = self.rng.choice(list(models.Instance.objects.filter(members=robot)))
        return node, robot

    def _backend(self) -> models.Backend:
        """One of the demo's own backends: one an operator added gets no made-up traffic."""
        names = [name for name, *_ in BACKENDS]
        return self.rng.choice(list(models.Backend.objects.filter(name__in=names)))

    def _params(self, backend: models.Backend) -> tuple[str, dict]:
        rng = self.rng
        width = rng.randint(2, min(backend.num_qubits, 12))
        shots = rng.choice([1000, 2000, 4000, 8000])
        device = device_of(backend)
        if rng.random() < 0.2:
            circuit = circuits.ghz(width, measure=False)
            observable: Any = "Z" * width
            if device is not None:  # a device takes ISA circuits only
                circuit = _isa(device, width, measure=False)
                observable = SparsePauliOp(observable).apply_layout(circuit.layout)
            return "estimator", circuits.estimator_params(circuit, [observable], 0.02)
        circuit = circuits.ghz(width) if device is None else _isa(device, width, measure=True)
        return "sampler", circuits.sampler_params([circuit], shots)

    def _plain_job(self) -> None:
        backend = self._backend()
        node, user = self._member()
        program, params = self._params(backend)
        self._submit(owner=user, backend=backend, instance=node, program_id=program, params=params)

    def _start_session(self) -> None:
        backend = self._backend()
        node, user = self._member()
        if self.rng.random() < 0.5:
            mode = m.BATCH if self.rng.random() < 0.3 else m.DEDICATED  # Batch(...) too
            session, _ = sessions_create(owner=user, backend=backend, instance=node, mode=mode)
        else:
            program, params = self._params(backend)
            job = self._submit(
                owner=user,
                backend=backend,
                instance=node,
                program_id=program,
                params=params,
                start_session=True,
            )
            assert job.session is not None
            session = job.session
        self.sessions.append((session, self.rng.randint(2, 6)))

    def _session_job(self) -> None:
        index = self.rng.randrange(len(self.sessions))
        session, left = self.sessions[index]
        session.refresh_from_db()
        if left <= 0 or session.state == m.CLOSED or not session.accepting_jobs:
            self.sessions.pop(index)
            if session.state != m.CLOSED:
                sessions_close(session=session)
            return
        program, params = self._params(session.backend)
        self._submit(
            owner=session.owner,
            backend=session.backend,
            instance=session.instance,
            program_id=program,
            params=params,
            session_id=session.uid,
        )
        self.sessions[index] = (session, left - 1)

    def _submit(self, **job: Any) -> models.Job:
        submitted = jobs_submit(**job, tags=[DEMO_TAG]).job
        self.submitted.append(submitted.uid)
        return submitted

    def _cancel_one(self) -> None:
        """Cancel one of its own queued jobs (never one a person submitted)."""
        mine = models.Job.objects.filter(uid__in=list(self.submitted), status=m.QUEUED)
        job = mine.order_by("?").first()
        if job is not None:
            jobs_cancel(job=job)


async def traffic_loop(
    traffic: Traffic,
    *,
    mean_gap: float = 4.0,
    max_queued: int = 40,
    burst: int = 12,
    burst_gap: float = 0.5,
) -> None:
    """Run demo traffic forever, pausing while the queue is long.

    It opens with a burst of plain jobs (`burst` of them, `burst_gap` seconds
    apart) so a freshly started demo has queues to watch at once, and ones that
    drain in seconds (no session holds a backend yet); then one step every
    `mean_gap` seconds on average.
    """
    # A thread of its own: a cancel waits for the scheduler, whose steps may run in
    # this process's main sync thread.
    step = sync_to_async(traffic.step, thread_sensitive=False)
    queued = sync_to_async(models.Job.objects.filter(status=m.QUEUED).count, thread_sensitive=True)
    steps = 0
    while True:
        in_burst = steps < burst
        steps += 1
        await asyncio.sleep(burst_gap if in_burst else traffic.rng.expovariate(1 / mean_gap))
        try:
            if await queued() < max_queued:
                await step(plain=in_burst)
        except Exception:  # demo traffic must never take the server down
            log.exception("demo traffic step failed")

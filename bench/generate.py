"""Deterministic, realistic scenarios for the benchmarks (the scenario format of docs/simulate.md).

`generate(n_jobs, seed)` gives the same document for the same arguments: one
`random.Random` seeded from both, no clock, no hash-order dependence. The load
is tuned so every backend is about 90 % busy (queues form and drain); the
benchmark measures the real utilisation and queue depth from each trace.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKENDS = [f"qpu_{i:02d}" for i in range(8)]

# hub -> share, then its groups: group -> (share, {project: (share, demand weight)}).
TREE: dict[str, tuple[float, dict[str, tuple[float, dict[str, tuple[float, float]]]]]] = {
    "ibm-q": (4, {"open": (1, {"main": (1, 9), "edu": (1, 3)}),
                  "internal": (3, {"dev": (2, 4), "qa": (1, 2)})}),
    "research": (2, {"chem": (2, {"vqe": (1, 6), "dynamics": (1, 2)}),
                     "opt": (1, {"qaoa": (1, 5), "anneal": (1, 1)}),
                     "qec": (1, {"codes": (3, 2), "decoders": (1, 1)})}),
    "academic": (1, {"mit": (1, {"lab1": (1, 3), "lab2": (1, 1)}),
                     "eth": (1, {"theory": (1, 2), "exp": (2, 2)}),
                     "tokyo": (1, {"qml": (1, 4), "sim": (1, 1)})}),
    "partner": (1, {"bank": (2, {"risk": (1, 5), "pricing": (1, 2)}),
                    "auto": (1, {"batt": (1, 3), "route": (1, 2)})}),
}  # fmt: skip

MIN_DURATION, MAX_DURATION = 1.0, 60.0  # seconds
SESSION_JOB_SHARE = 0.20  # fraction of jobs submitted inside sessions
SESSION_JOBS = (2, 10)  # jobs per session, inclusive
RESERVATIONS_PER_BACKEND = 3
TARGET_LOAD = 0.92  # offered run time per backend-second (failures, cancels, windows: ~0.90 busy)


@dataclass(frozen=True)
class Shape:
    """Counts describing a generated scenario (for the report)."""

    jobs: int
    sessions: int
    reservations: int
    events: int
    horizon: float  # seconds over which jobs arrive


def instances() -> list[tuple[str, float]]:
    """Every project instance with its demand weight."""
    return [
        (f"{hub}/{group}/{project}", demand)
        for hub, (_, groups) in TREE.items()
        for group, (_, projects) in groups.items()
        for project, (_, demand) in projects.items()
    ]


def shares() -> dict[str, float]:
    """Shares of every tree node that is not 1 (unset shares are 1)."""
    result: dict[str, float] = {}
    for hub, (hub_share, groups) in TREE.items():
        result[hub] = hub_share
        for group, (group_share, projects) in groups.items():
            result[f"{hub}/{group}"] = group_share
            for project, (project_share, _) in projects.items():
                result[f"{hub}/{group}/{project}"] = project_share
    return {node: share for node, share in result.items() if share != 1}


def prior_usage(rng: random.Random) -> dict[str, float]:
    """Seconds already used by about half of the instances (up to 2 days)."""
    return {
        name: round(rng.uniform(600, 172_800), 1) for name, _ in instances() if rng.random() < 0.5
    }


def mean_duration() -> float:
    return (MIN_DURATION + MAX_DURATION) / 2


def arrival_rate(load: float = TARGET_LOAD) -> float:
    """Jobs per second so each backend runs jobs `load` of the time."""
    return load * len(BACKENDS) / mean_duration()


class _Builder:
    """Accumulates events; sorted by time (file order within an instant) at the end."""

    def __init__(self, rng: random.Random, horizon: float) -> None:
        self.rng = rng
        self.horizon = horizon
        self.events: list[tuple[float, int, dict[str, Any]]] = []
        self.jobs = 0
        self.sessions = 0
        self.names = instances()
        self.weights = [demand for _, demand in self.names]
        self.reservations = self._reservations()
        self.windows = {
            b: [
                (r["start"], r["end"], r["instance"])
                for r in self.reservations
                if r["backend"] == b
            ]
            for b in BACKENDS
        }

    def add(self, at: float, event: dict[str, Any]) -> None:
        event = {"at": round(at, 3), **event}
        self.events.append((event["at"], len(self.events), event))

    def _reservations(self) -> list[dict[str, Any]]:
        """A few windows per backend, one per slice of the horizon, a third exclusive."""
        rng = self.rng
        slots = RESERVATIONS_PER_BACKEND
        slice_len = self.horizon / slots
        result = []
        for backend in BACKENDS:
            for k in range(slots):
                length = rng.uniform(600, min(3600, slice_len / 2))
                start = k * slice_len + rng.uniform(0, slice_len - length)
                result.append(
                    {
                        "id": f"r-{backend}-{k}",
                        "backend": backend,
                        "instance": rng.choices(self.names, self.weights)[0][0],
                        "start": round(start, 3),
                        "end": round(start + length, 3),
                        "exclusive": rng.random() < 1 / 3,
                    }
                )
        return result

    def instance_for(self, backend: str, at: float) -> str:
        """Demand-weighted; inside a reservation window the holder sends half the jobs."""
        for start, end, instance in self.windows[backend]:
            if start <= at < end and self.rng.random() < 0.5:
                return instance
        return self.rng.choices(self.names, self.weights)[0][0]

    def duration(self) -> float:
        return round(self.rng.uniform(MIN_DURATION, MAX_DURATION), 3)

    def job_name(self) -> str:
        self.jobs += 1
        return f"j{self.jobs:07d}"

    def plain_job(self, at: float) -> None:
        rng = self.rng
        backend = rng.choice(BACKENDS)
        duration = self.duration()
        submit: dict[str, Any] = {
            "job": self.job_name(),
            "instance": self.instance_for(backend, at),
            "backend": backend,
            "duration": duration,
        }
        roll = rng.random()
        if roll < 0.03:  # a limit the job will exceed: it fails at the limit
            submit["max_execution_time"] = round(duration * rng.uniform(0.3, 0.9), 3)
        elif roll < 0.15:
            submit["max_execution_time"] = rng.choice([300, 600, 3600])
        self.add(at, {"submit": submit})
        if rng.random() < 0.02:  # occasional cancel: queued, running or already done
            self.add(at + rng.uniform(0, 300), {"cancel_job": submit["job"]})

    def session(self, at: float, n_jobs: int) -> None:
        rng = self.rng
        self.sessions += 1
        name = f"s{self.sessions:06d}"
        backend = rng.choice(BACKENDS)
        instance = self.instance_for(backend, at)
        first_at = at
        if rng.random() < 0.5:  # the `with Session(...)` client: create, then submit
            create: dict[str, Any] = {"session": name, "instance": instance, "backend": backend}
            if rng.random() < 0.3:
                create["max_ttl"] = rng.choice([900, 1800, 7200])
            self.add(at, {"create_session": create})
            first_at = at + rng.uniform(0.5, 5)
            starts_by_job = False
        else:
            starts_by_job = True
        t = first_at
        for k in range(n_jobs):
            submit: dict[str, Any] = {
                "job": self.job_name(),
                "instance": instance,
                "backend": backend,
                "duration": self.duration(),
                "session": name,
            }
            if k == 0 and starts_by_job:
                submit["start_session"] = True
                if rng.random() < 0.3:
                    submit["max_execution_time"] = rng.choice([900, 3600])
            self.add(t, {"submit": submit})
            last = t
            t += rng.uniform(1, 40)  # the client thinks between jobs
        roll = rng.random()
        if roll < 0.03:  # cancelled part-way (later submissions are refused)
            self.add(rng.uniform(first_at, last + 60), {"cancel_session": name})
        elif roll < 0.55:  # closed after its last submission; it drains first
            self.add(last + rng.uniform(0, 5), {"close_session": name})
        # else: left open; the interactive timeout and then the max TTL end it

    def document(self, usage: dict[str, float]) -> dict[str, Any]:
        self.events.sort(key=lambda item: (item[0], item[1]))
        return {
            "backends": [{"name": b} for b in BACKENDS],
            "shares": shares(),
            "usage": usage,
            "reservations": self.reservations,
            "events": [event for _, _, event in self.events],
        }


def generate(n_jobs: int, seed: int = 0, load: float = TARGET_LOAD) -> dict[str, Any]:
    """A scenario with `n_jobs` jobs over 8 backends (default settings)."""
    rng = random.Random(f"qdash-bench:{seed}:{n_jobs}")
    job_rate = arrival_rate(load)
    mean_session = sum(SESSION_JOBS) / 2
    # Work units: plain jobs, or sessions of several jobs, arriving as one Poisson stream.
    p_session = SESSION_JOB_SHARE / (mean_session * (1 - SESSION_JOB_SHARE) + SESSION_JOB_SHARE)
    unit_rate = job_rate / (1 - p_session + p_session * mean_session)
    builder = _Builder(rng, horizon=n_jobs / job_rate)
    usage = prior_usage(rng)
    t = 0.0
    while builder.jobs < n_jobs:
        t += rng.expovariate(unit_rate)
        left = n_jobs - builder.jobs
        if left >= SESSION_JOBS[0] and rng.random() < p_session:
            builder.session(t, min(left, rng.randint(*SESSION_JOBS)))
        else:
            builder.plain_job(t)
    return builder.document(usage)


def shape(document: dict[str, Any]) -> Shape:
    events = document["events"]
    submits = [e for e in events if "submit" in e]
    sessions = sum(1 for e in events if "create_session" in e) + sum(
        1 for e in submits if e["submit"].get("start_session")
    )
    return Shape(
        jobs=len(submits),
        sessions=sessions,
        reservations=len(document["reservations"]),
        events=len(events),
        horizon=max((e["at"] for e in submits), default=0.0),
    )


def write(document: dict[str, Any], path: Path) -> Path:
    """Write a scenario compactly (large scenarios are hundreds of MB)."""
    with path.open("w") as out:
        json.dump(document, out, separators=(",", ":"))
    return path

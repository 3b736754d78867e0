"""What a chaos run is asked to do, and what it found."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

FAILOVER_TARGET_S = 5.0  # p95, kill to the next decision


FINAL = ("Completed", "Failed", "Cancelled")


@dataclass
class ChaosConfig:
    jobs: int = 10_000
    duration: float = 480.0  # seconds over which the submissions are spread
    backends: int = 8
    job_seconds: float = 0.1  # modeled QPU time of a job (overhead)
    leader_kills: int = 100
    executor_kills: int = 5
    redis_restarts: int = 2
    pg_terminations: int = 5
    web_restarts: int = 2
    browser: bool = True
    schedulers: int = 2
    executors: int = 2
    concurrency: int = 2
    submitters: int = 8  # client threads
    session_share: float = 0.05  # of submissions that open a session stream
    cancel_share: float = 0.03
    drain_timeout: float = 900.0
    seed: int = 0
    database: str = "qdash_chaos"


@dataclass
class ChaosResult:
    config: ChaosConfig
    wall_s: float = 0.0
    accepted: int = 0  # jobs the API answered 201 for
    final: Counter[str] = field(default_factory=Counter)  # accepted jobs by final status
    errors: Counter[str] = field(default_factory=Counter)  # failed jobs by error code
    lost: list[str] = field(default_factory=list)  # accepted, never final (or missing)
    started_twice: list[str] = field(default_factory=list)
    executed_twice: list[str] = field(default_factory=list)  # overlapping executions
    written_twice: list[str] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)  # executions by outcome
    failovers_s: list[float] = field(default_factory=list)
    failovers_missed: int = 0  # kills after which no new leader decided within a minute
    faults: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)  # API answers by class
    dropped: int = 0  # submissions that never got an answer after all retries
    duplicates: int = 0  # submissions accepted twice (a retry after a lost answer)
    reconnects_s: list[float] = field(default_factory=list)
    updates_afterinject_faults: dict[str, int] = field(default_factory=dict)
    browser_note: str = ""
    parity: str = ""
    redis_down_s: list[float] = field(default_factory=list)
    note: str = ""

"""What a served fuzz run is asked to do, what it found, and what it raises for the run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

CONFORMANCE = (  # schemathesis checks whose failure is a schema violation
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


LIMITS = {  # raised for the run (README, "Configuration" and "Limits")
    "QDASH_API_REQUESTS_PER_MINUTE": "1000000",
    "QDASH_API_FAILURES_PER_MINUTE": "1000000",
    "QDASH_MAX_QUEUED_PER_USER": "1000000",
    "QDASH_MAX_OPEN_SESSIONS_PER_USER": "1000000",
}


# What a path parameter names: whatever was generated (almost always missing),
# the caller's own job or session, or another user's.
TARGETS = ("generated", "generated", "own", "other")


STATEFUL_TARGETS = ("generated", "own", "own", "other")  # creations start most scenarios


INSTANCE = "ibm-q/research/qec"  # one of alice's two demo instances


EXAMPLES_KEPT = 3  # failing cases shown per operation


@dataclass(kw_only=True)
class FuzzConfig:
    cases: int = 10_000  # generated single requests over all operations
    scenarios: int = 300  # stateful scenarios (each a few linked requests)
    decoder_examples: int = 2_000  # hypothesis examples per decoder
    hostile_per_shape: int = 12  # hostile programs sent per shape (tests.acceptance.fuzz.hostile)
    seed: int = 0
    port: int | None = None


@dataclass
class Tally:
    """What one operation answered."""

    cases: int = 0
    stateful: int = 0  # of `cases`, sent by the stateful phase
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    violations: int = 0
    throttled: Counter[str] = field(default_factory=Counter)  # 429s by their `code`
    transport_errors: int = 0
    examples: list[str] = field(default_factory=list)

    def keep(self, text: str) -> None:
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(text)


@dataclass
class FuzzResult:
    operations: dict[str, Tally] = field(default_factory=dict)
    decoders: dict[str, dict[str, Any]] = field(default_factory=dict)
    api_seconds: float = 0.0
    decoder_seconds: float = 0.0
    logged_server_errors: int = 0  # "API error (request ...)" lines in the server log
    alive_after: bool = False
    port: int = 0
    scenarios: int = 0  # stateful scenarios run
    restarts: int = 0  # stateful suites started again after a `Flaky` replay
    hostile: Any = None  # hostile.HostileResult

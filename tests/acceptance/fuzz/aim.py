"""Generated API cases aimed at real objects, for both fuzz runs (in-process and served).

Generated bodies almost never name a backend, a program or decodable `params`,
and generated ids name nothing: an aimed case gets real ones, keeping the
generated rest, so creations succeed and reads, cancels and closes find their
object (or another user's, which they must not reach).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CREATIONS = ("/api/v1/jobs", "/api/v1/sessions")


@dataclass(frozen=True, kw_only=True)
class Target:
    """What an aimed case names."""

    backend: str  # the backend a creation names
    job: str  # the job a job path names
    session: str  # the session a session path names
    backend_path: str  # the backend a backend path names
    join: str | None = None  # the session a created job joins


def aim(case: Any, target: Target, params: dict[str, Any]) -> None:
    """Point `case` (a schemathesis case) at `target`: a creation's body, or its path."""
    if case.method.upper() == "POST" and case.path in CREATIONS:
        if isinstance(case.body, dict):
            case.body["backend"] = target.backend
            case.body.pop("instance", None)
            if case.path == "/api/v1/jobs":
                case.body.update(program_id="sampler", params=params)
                if target.join is not None:
                    case.body["session_id"] = target.join
        return
    if not case.path_parameters:
        return
    if "name" in case.path_parameters:
        case.path_parameters["name"] = target.backend_path
    elif case.path.startswith("/api/v1/sessions/"):
        case.path_parameters["uid"] = target.session
    else:
        case.path_parameters["uid"] = target.job

"""Request and answer shapes of the Qiskit Runtime-compatible API."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, PositiveInt

Tag = str  # count and length are limits of the deployment (QDASH_MAX_TAGS, ...)
MAX_SECONDS = 366 * 24 * 3600  # longer spans are refused, not overflowed


class Error(Schema):
    code: str
    message: str


class ServerError(Schema):
    code: str
    message: str
    request_id: str


# Every refusal an operation may give; a 500 carries a request id instead of details.
REFUSALS: dict[int, type[Schema]] = {
    400: Error,
    401: Error,
    403: Error,
    404: Error,
    409: Error,
    413: Error,
    429: Error,
    500: ServerError,
}


class TokenOut(Schema):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    expiration: int


class DeviceStatus(Schema):
    name: str  # online | paused
    reason: str = ""


class Device(Schema):
    name: str
    num_qubits: int
    status: DeviceStatus
    queue_length: int = 0
    physical_qubits: int
    description: str = ""


class DevicesOut(Schema):
    devices: list[Device]


class GateConfig(Schema):
    model_config = ConfigDict(extra="allow")

    name: str
    parameters: list[str] | None  # null on some devices' reset
    qasm_def: str | None
    coupling_map: list[list[int]] | None = Field(
        None, description="The qubits (in order) the gate acts on; absent: any."
    )


class ConfigurationOut(Schema):
    """A backend's configuration. A device backend's has every field its device reports
    (qubit coordinates, measurement map, ...); fields a backend does not have are absent."""

    model_config = ConfigDict(extra="allow")

    backend_name: str
    backend_version: str
    n_qubits: int
    basis_gates: list[str]
    gates: list[GateConfig]
    local: bool
    simulator: bool
    conditional: bool
    open_pulse: bool
    memory: bool
    coupling_map: list[list[int]] | None
    online_date: str
    max_shots: int
    max_experiments: int
    description: str = ""
    supported_instructions: list[str] | None = Field(
        None, description="Instructions the device runs, control flow included."
    )
    dt: float | None = Field(None, description="The device's time step, in nanoseconds.")
    dtm: float | None = None
    processor_type: dict[str, Any] | None = None
    timing_constraints: dict[str, int] | None = None
    default_rep_delay: float | None = Field(
        None, description="Delay between shots, in microseconds."
    )
    rep_delay_range: list[float] | None = None
    meas_map: list[list[int]] | None = None
    supported_features: list[str] | None = None
    quantum_volume: int | None = None
    clops_h: int | None = None
    coords: list[list[float]] | None = Field(None, description="Where each qubit is drawn.")


class BackendStatusOut(Schema):
    backend_name: str
    state: bool
    status: str
    message: str
    length_queue: int
    backend_version: str


class SessionIn(Schema):
    model_config = ConfigDict(extra="ignore")

    backend: str
    mode: Literal["dedicated", "batch"] = "dedicated"
    instance: str | None = None
    max_ttl: PositiveInt | None = Field(None, le=MAX_SECONDS, description="Maximum TTL in seconds.")


class SessionPatch(Schema):
    accepting_jobs: bool


class SessionOut(Schema):
    id: str
    backend_name: str
    instance: str
    mode: str
    state: str
    accepting_jobs: bool
    max_ttl: int | None
    interactive_ttl: int
    active_ttl: int | None
    elapsed_time: float
    created_at: str
    started_at: str | None
    activated_at: str | None
    closed_at: str | None
    closed_reason: str | None
    last_job_started: str | None
    last_job_completed: str | None
    warnings: list[str] = []


class JobIn(Schema):
    """The body of `POST /jobs` as `qiskit-ibm-runtime` sends it (`program_run`)."""

    model_config = ConfigDict(extra="ignore")

    program_id: str
    backend: str
    params: dict[str, Any]
    session_id: str | None = None
    start_session: bool = False
    tags: list[Tag] = Field(default_factory=list)
    cost: PositiveInt | None = Field(
        None, le=MAX_SECONDS, description="Maximum execution time in seconds."
    )
    max_execution_time: PositiveInt | None = Field(
        None, le=MAX_SECONDS, description="Alias of cost."
    )
    log_level: str | None = None
    private: bool = False


class JobCreated(Schema):
    id: str
    backend: str
    session_id: str | None = None
    warnings: list[str] = []


class JobState(Schema):
    status: str
    reason: str | None = None
    reason_code: int | None = None


class JobOut(Schema):
    id: str
    backend: str
    session_id: str | None
    instance: str
    created: str
    status: str
    state: JobState
    program: dict[str, str]
    tags: list[str]
    cost: int | None
    runtime: str = ""
    private: bool = False
    params: dict[str, Any] | None = None
    estimated_running_time_seconds: float | None = Field(
        None, description="The modeled QPU time of the job, in seconds."
    )


class JobsOut(Schema):
    jobs: list[JobOut]
    count: int
    limit: int
    offset: int


class TagsIn(Schema):
    tags: list[Tag]


class UsagePeriod(Schema):
    start_time: str
    end_time: str


class UsageOut(Schema):
    """IBM's fields, then qdash's own; the allocation's are left out without one."""

    instance_id: str
    plan_id: str
    usage_period: UsagePeriod
    usage_consumed_seconds: float
    usage_allocation_seconds: float | None = None
    usage_limit_seconds: float | None = None
    usage_limit_reached: bool | None = None
    instance: str
    usage_window_seconds: int
    share: float
    usage_allocation_node: str | None = None  # the hub, group or project it is set on
    usage_frees_at: str | None = None  # when time frees up, if nothing more is charged

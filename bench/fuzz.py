"""`python -m bench --fuzz`: the API and the decoders under generated input. Counts, never asserts.

Two parts:

- **schemathesis** against a real `manage.py serve --demo` on a scratch SQLite
  database: every operation of `/api/v1/openapi.json` gets positive and negative
  generated requests from the demo researcher alice (API key, `Service-CRN`),
  with path parameters aimed now and then at her own job or session, at another
  user's, or left as generated; then schemathesis' stateful testing follows the
  schema's OpenAPI links (a created job or session to the operations taking its
  id). Each answer is checked: a 5xx is a server error; a status, content type,
  header or body the schema does not declare is a schema violation. The
  per-key request limit, the bad-key limit, queued jobs and open sessions per
  user are raised for the run, so the fuzz reaches the operations instead of
  the throttle; 429s that remain are counted by their code.
- **hypothesis** over the OpenQASM decoder and the PUB and params decoders
  (`bench.fuzz_child`, in its own interpreter with the settings loaded), with
  malformed input: anything other than the project's clean refusals is an
  unexpected exception.

The target: 0 server errors, 0 schema violations, 0 unexpected exceptions.
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import ROOT

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


# ------------------------------------------------------------------ server
def _free_port(preferred: range = range(8750, 8800)) -> int:
    for port in preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`manage.py serve --demo` on a scratch SQLite database, with the raised limits."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        database = workdir / "fuzz.sqlite3"
        for stale in workdir.glob("fuzz.sqlite3*"):
            stale.unlink()
        self.log_path = workdir / "server.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{database}",
            "REDIS_URL": "",
            "QDASH_PRODUCTION": "",
            "DEBUG": "",
            **LIMITS,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--demo", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log_path}")
            if self.alive():
                return
            time.sleep(0.5)
        raise RuntimeError(f"the server did not answer in 180 s; see {self.log_path}")

    def alive(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.base}/healthz", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def api_key(self, user: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", "issue_token", "--user", user, "--json"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return str(json.loads(out.stdout)["token"])

    def logged_server_errors(self) -> int:
        return self.log_path.read_text(errors="replace").count("API error (request")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ------------------------------------------------------------------ run
def run(config: FuzzConfig, workdir: Path) -> FuzzResult:
    """Start the server, fuzz its API, stop it; then fuzz the decoders."""
    result = FuzzResult(port=config.port or _free_port())
    server = Server(workdir, result.port)
    server.start()
    try:
        start = time.perf_counter()
        _fuzz_api(server, config, result)
        result.api_seconds = time.perf_counter() - start
        result.alive_after = server.alive()
    finally:
        server.stop()
    result.logged_server_errors = server.logged_server_errors()
    start = time.perf_counter()
    result.decoders = _fuzz_decoders(config, workdir)
    result.decoder_seconds = time.perf_counter() - start
    return result


def _fuzz_decoders(config: FuzzConfig, workdir: Path) -> dict[str, dict[str, Any]]:
    out = workdir / "decoders.json"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'decoders.sqlite3'}"}
    command = [sys.executable, "-m", "bench.fuzz_child", "--examples"]
    command += [str(config.decoder_examples), "--seed", str(config.seed), "--result", str(out)]
    subprocess.run(command, cwd=ROOT, env={**env, "REDIS_URL": ""}, check=True)
    answer: dict[str, dict[str, Any]] = json.loads(out.read_text())
    return answer


class Caller:
    """alice's requests to the server, and what they found, per operation."""

    def __init__(self, server: Server, result: FuzzResult) -> None:
        import requests
        from schemathesis.specs.openapi import checks

        self.base = server.base
        self.session = requests.Session()
        self.result = result
        self.checks = [getattr(checks, name) for name in CONFORMANCE]
        self.bell = _bell()
        self.headers = {
            "Authorization": f"Bearer {server.api_key('alice')}",
            "Service-CRN": INSTANCE,
        }

    def send(self, case: Any, *, stateful: bool = False) -> Any:
        """Send `case` as alice and tally the answer; the response, or None."""
        import requests
        from schemathesis.core.failures import FailureGroup

        tally = self.result.operations.setdefault(_label(case.operation), Tally())
        tally.cases += 1
        tally.stateful += stateful
        try:
            response = case.call(
                base_url=self.base, session=self.session, headers=self.headers, timeout=60
            )
        except requests.RequestException as error:
            tally.transport_errors += 1
            tally.keep(f"transport: {type(error).__name__}: {error}"[:300])
            return None
        status = response.status_code
        tally.statuses[status] += 1
        if status >= 500:
            tally.server_errors += 1
            tally.keep(f"{status}: {case.as_curl_command(headers=self.headers)}"[:600])
        if status == 429:
            tally.throttled[_code(response)] += 1
        try:
            case.validate_response(response, checks=self.checks, headers=self.headers)
        except FailureGroup as group:
            tally.violations += 1
            titles = "; ".join(sorted({failure.title for failure in group.exceptions}))
            tally.keep(f"{status} {titles}: {case.as_curl_command(headers=self.headers)}"[:600])
        except AssertionError as error:  # a single failure
            tally.violations += 1
            tally.keep(f"{status} {error}: {case.as_curl_command(headers=self.headers)}"[:600])
        return response


def _label(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


def _code(response: Any) -> str:
    try:
        return str(response.json().get("code", "?"))
    except ValueError:
        return "?"


def _fuzz_api(server: Server, config: FuzzConfig, result: FuzzResult) -> None:
    import schemathesis

    caller = Caller(server, result)
    schema = schemathesis.openapi.from_url(f"{server.base}/api/v1/openapi.json")
    schema.config.update(base_url=server.base)
    objects = _objects(server, caller)
    operations = [_unwrap(item) for item in schema.get_all_operations()]
    per_operation = math.ceil(config.cases / len(operations))
    print(
        f"fuzz: {len(operations)} operations × {per_operation} cases, "
        f"then {config.scenarios} stateful scenarios, on {server.base}",
        flush=True,
    )
    # Deleting, cancelling or closing aimed objects last, each from fresh ones, so the
    # reading operations find them (and the job finished, with results) first.
    operations.sort(key=_ends_objects)
    for operation in operations:
        if _ends_objects(operation):
            objects = _objects(server, caller)
        sent = _fuzz_operation(operation, per_operation, objects, caller, config.seed)
        print(f"  {_label(operation)}: {sent} cases", flush=True)
    _fuzz_links(schema, config, objects, caller)


def _ends_objects(operation: Any) -> bool:
    """Whether the operation deletes, cancels or closes what it names."""
    method, path = operation.method.upper(), operation.path
    return method in ("DELETE", "PATCH") or path.endswith("/cancel")


def _unwrap(item: Any) -> Any:
    """An operation schemathesis could read; one it could not is an error of the schema."""
    from schemathesis.core.result import Err

    if isinstance(item, Err):
        raise item.err()
    return item.ok()


def _objects(server: Server, caller: Caller) -> dict[str, dict[str, str]]:
    """Ids of alice's own job and session, and of bob's: what aimed cases name."""
    import requests

    bob = {"Authorization": f"Bearer {server.api_key('bob')}"}
    found: dict[str, dict[str, str]] = {}
    for who, headers in (("own", caller.headers), ("other", bob)):
        body: dict[str, Any] = {"program_id": "sampler", "backend": "sim_kyiv"}
        body.update(params=caller.bell, start_session=True)
        answer = requests.post(f"{server.base}/api/v1/jobs", json=body, headers=headers, timeout=60)
        answer.raise_for_status()
        created = answer.json()
        found[who] = {"job": created["id"], "session": created["session_id"], "backend": "sim_kyiv"}
    return found


def _bell() -> dict[str, Any]:
    from scheduler import circuits

    return circuits.sampler_params([circuits.ghz(2)], 100)


def _aim(
    case: Any,
    target: str,
    objects: dict[str, dict[str, str]],
    bell: dict[str, Any],
    *,
    linked: bool = False,
) -> None:
    """Point the case at the job, session or backend `target` names.

    Generated bodies almost never name a backend, a program or decodable params:
    an aimed `POST` gets a real backend (and a job its program and params),
    keeping the generated rest, so creations succeed and their links lead somewhere.
    A `linked` case keeps the session id a link put in its body.
    """
    if target == "generated":
        return
    names = objects[target]
    if case.method.upper() == "POST" and case.path in ("/api/v1/jobs", "/api/v1/sessions"):
        if isinstance(case.body, dict):
            case.body["backend"] = names["backend"]
            case.body.pop("instance", None)
            if case.path == "/api/v1/jobs":
                case.body.update(program_id="sampler", params=bell)
                if "session_id" in case.body and not linked:
                    case.body["session_id"] = names["session"]
        return
    if not case.path_parameters:
        return
    if "name" in case.path_parameters:
        case.path_parameters["name"] = names["backend"] if target == "own" else "no_such_backend"
    elif case.path.startswith("/api/v1/sessions/"):
        case.path_parameters["uid"] = names["session"]
    else:
        case.path_parameters["uid"] = names["job"]


def _fuzz_operation(
    operation: Any, count: int, objects: dict[str, dict[str, str]], caller: Caller, seed: int
) -> int:
    """`count` cases for one operation, half of them positive and half negative.

    A small operation (no parameters) runs out of distinct cases early; the
    hypothesis run is repeated with new seeds until `count` were sent.
    """
    import hypothesis
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    def sent() -> int:
        return caller.result.operations.get(_label(operation), Tally()).cases

    for attempt in range(20):
        if sent() >= count:
            break
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            want = max(1, (count - sent()) // 2)

            @hypothesis.given(case=operation.as_strategy(mode), target=st.sampled_from(TARGETS))
            @hypothesis.settings(
                max_examples=want,
                deadline=None,
                database=None,
                phases=[hypothesis.Phase.generate],
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            @hypothesis.seed(seed * 1000 + attempt)
            def one(case: Any, target: str) -> None:
                _aim(case, target, objects, caller.bell)
                caller.send(case)

            one()
    return sent()


def _fuzz_links(
    schema: Any, config: FuzzConfig, objects: dict[str, dict[str, str]], caller: Caller
) -> None:
    """schemathesis' stateful testing: sequences that follow the schema's links.

    Creations are aimed as in the single requests (a linked id is left as linked).
    Which links can be followed depends on the server's answers, so hypothesis
    may find a replayed scenario behaving differently (`Flaky`); as schemathesis'
    own runner does, the suite then starts again with a new seed, until
    `config.scenarios` scenarios ran.
    """
    import hypothesis
    from hypothesis.errors import Flaky

    machine = schema.as_state_machine()
    pick = random.Random(config.seed)
    done = [0]

    class Linked(machine):  # type: ignore[misc, valid-type]
        def call(self, case: Any, **kwargs: Any) -> Any:
            if not case.path_parameters:
                target = pick.choice(STATEFUL_TARGETS)
                _aim(case, target, objects, caller.bell, linked=True)
            response = caller.send(case, stateful=True)
            hypothesis.assume(response is not None)  # a transport error, counted
            return response

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            """Checked (and counted) in `caller.send`."""

        def teardown(self) -> None:
            done[0] += 1
            super().teardown()

    before = sum(tally.stateful for tally in caller.result.operations.values())
    restarts = 0
    while done[0] < config.scenarios and restarts < 100:
        settings = hypothesis.settings(
            max_examples=config.scenarios - done[0],
            stateful_step_count=6,
            deadline=None,
            database=None,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        try:
            hypothesis.seed(config.seed * 1000 + restarts)(Linked).run(settings=settings)
        except (Flaky, AssertionError):  # an inconsistent replay is an AssertionError
            restarts += 1
            continue
        break
    after = sum(tally.stateful for tally in caller.result.operations.values())
    caller.result.scenarios, caller.result.restarts = done[0], restarts
    print(
        f"  stateful: {done[0]} scenarios, {after - before} linked requests, {restarts} restarts",
        flush=True,
    )


# ------------------------------------------------------------------ report
def report(result: FuzzResult, command: str) -> list[str]:
    ops = result.operations
    total = _sum(ops.values())
    linked = sum(tally.stateful for tally in ops.values())
    decoders = result.decoders
    examples = sum(d["examples"] for d in decoders.values())
    unexpected = sum(d["unexpected"] for d in decoders.values())
    met = total.server_errors == 0 and total.violations == 0 and unexpected == 0
    lines = [
        "# qdash fuzz benchmark",
        "",
        f"`python -m bench {command}` · {os.cpu_count()} CPUs · API part "
        f"{result.api_seconds:.0f} s, decoders {result.decoder_seconds:.0f} s",
        "",
        f"**{total.cases:,} API cases ({linked:,} of them in {result.scenarios} stateful "
        "scenarios following the schema's links): "
        f"{total.server_errors} server errors, {total.violations} schema violations; "
        f"{examples:,} decoder examples: {unexpected} unexpected exceptions. Target 0 / 0 / 0: "
        f"{'met' if met else 'NOT met'}.**",
        "",
        f"`manage.py serve --demo` on a scratch SQLite database, port {result.port}; every "
        "request as the demo researcher alice with an API key. Raised for the run: "
        + ", ".join(f"`{name}={value}`" for name, value in LIMITS.items())
        + f". 429 answers anyway: {sum(total.throttled.values())}"
        + (f" ({_codes(total.throttled)})" if total.throttled else "")
        + f". Transport errors: {total.transport_errors}. Server alive afterwards: "
        f"{'yes' if result.alive_after else 'NO'}; server errors in its log: "
        f"{result.logged_server_errors}.",
        "",
        "## API (schemathesis)",
        "",
        "| operation | cases | stateful | 2xx | 4xx | 429 | 5xx | schema violations |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in sorted(ops, key=lambda text: (text.split()[1], text.split()[0])):
        lines.append(_row(f"`{label}`", ops[label]))
    lines.append(_row("**total**", total))
    lines += [
        "",
        "## Decoders (hypothesis)",
        "",
        "| decoder | examples | refused cleanly | accepted | unexpected exceptions |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in decoders.values():
        lines.append(
            f"| {row['what']} | {row['examples']:,} | {row['refused']:,} | {row['accepted']:,} "
            f"| {row['unexpected']} |"
        )
    lines.append(
        f"| **total** | {examples:,} | {sum(d['refused'] for d in decoders.values()):,} "
        f"| {sum(d['accepted'] for d in decoders.values()):,} | {unexpected} |"
    )
    found = [(label, text) for label, tally in ops.items() for text in tally.examples]
    found += [(name, text) for name, row in decoders.items() for text in row["failures"]]
    if found:
        lines += ["", "## Failures (first few of each)", ""]
        lines += [f"- {label}: `{text}`" for label, text in found]
    lines.append("")
    return lines


def _sum(tallies: Any) -> Tally:
    total = Tally()
    for tally in tallies:
        total.cases += tally.cases
        total.stateful += tally.stateful
        total.statuses.update(tally.statuses)
        total.server_errors += tally.server_errors
        total.violations += tally.violations
        total.throttled.update(tally.throttled)
        total.transport_errors += tally.transport_errors
    return total


def _row(label: str, tally: Tally) -> str:
    def between(low: int, high: int) -> int:
        return sum(n for status, n in tally.statuses.items() if low <= status < high)

    return (
        f"| {label} | {tally.cases:,} | {tally.stateful:,} | {between(200, 300):,} "
        f"| {between(400, 500):,} | {tally.statuses[429]:,} | {tally.server_errors} "
        f"| {tally.violations} |"
    )


def _codes(counts: Counter[str]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in counts.most_common())

"""The API part: schemathesis' generated requests per operation, then stateful
scenarios that follow the schema's links, each answer tallied by `Caller`."""

from __future__ import annotations

import math
import random
from typing import Any

from tests.acceptance.common import bell_params
from tests.acceptance.fuzz.aim import Target, aim
from tests.acceptance.fuzz.config import (
    CONFORMANCE,
    INSTANCE,
    STATEFUL_TARGETS,
    TARGETS,
    FuzzConfig,
    FuzzResult,
    Tally,
)
from tests.acceptance.fuzz.server import Server


class Caller:
    """alice's requests to the server, and what they found, per operation."""

    def __init__(self, server: Server, result: FuzzResult) -> None:
        import requests
        from schemathesis.specs.openapi import checks

        self.base = server.base
        self.session = requests.Session()
        self.result = result
        self.checks = [getattr(checks, name) for name in CONFORMANCE]
        self.bell = bell_params()
        self.headers = {
            "Authorization": f"Bearer {server.api_key('alice')}",
            "Service-CRN": INSTANCE,
        }

    def send(self, case: Any, *, stateful: bool = False) -> Any:
        """Send `case` as alice and tally the answer; the response, or None."""
        import requests
        from schemathesis.core.failures import FailureGroup

        tally = self.result.operations.setdefault(label(case.operation), Tally())
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


def label(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


def _code(response: Any) -> str:
    try:
        return str(response.json().get("code", "?"))
    except ValueError:
        return "?"


def fuzz_api(server: Server, config: FuzzConfig, result: FuzzResult) -> None:
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
        print(f"  {label(operation)}: {sent} cases", flush=True)
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
        # The demo's ideal backend: the Bell circuit is not in a device profile's ISA.
        body: dict[str, Any] = {"program_id": "sampler", "backend": "sim_lima"}
        body.update(params=caller.bell, start_session=True)
        answer = requests.post(f"{server.base}/api/v1/jobs", json=body, headers=headers, timeout=60)
        answer.raise_for_status()
        created = answer.json()
        found[who] = {"job": created["id"], "session": created["session_id"], "backend": "sim_lima"}
    return found


def _aim(
    case: Any,
    target: str,
    objects: dict[str, dict[str, str]],
    bell: dict[str, Any],
    *,
    linked: bool = False,
) -> None:
    """Point the case at the job, session or backend `target` names; a `linked` case
    keeps the session id a link put in its body."""
    if target == "generated":
        return
    names = objects[target]
    body = case.body if isinstance(case.body, dict) else {}
    aimed = Target(
        backend=names["backend"],
        job=names["job"],
        session=names["session"],
        backend_path=names["backend"] if target == "own" else "no_such_backend",
        join=names["session"] if "session_id" in body and not linked else None,
    )
    aim(case, aimed, bell)


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
        return caller.result.operations.get(label(operation), Tally()).cases

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

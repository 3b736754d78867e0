"""The access matrix: every page, fragment, API operation, the websocket and the admin,
for six callers, with the status each gets and what each body may reveal.

Rows come from the URL conf and the OpenAPI schema: an endpoint added without a
row here fails `test_every_endpoint_has_a_row`.

Callers: anonymous; a researcher of another instance ("other"); a researcher of
the same instance who is not the owner ("peer"); the owner; an operator
(staff); an inactive user (their session and key stop working).

Secrets are the owner's job id, session id, the job's inputs and results, the
instance path and the API key. Each cell lists the ones its body may show; any
other one in the body fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

from scheduler import circuits, models
from scheduler.api import api, experimental_api, identity_api
from scheduler.api.auth import instance_crn
from scheduler.auth_tokens import tokens_issue
from scheduler.engine import eager
from scheduler.executor import execute
from scheduler.policy import model as m
from tests.factories import BackendFactory, UserFactory, instance

CALLERS = ("anonymous", "other", "peer", "owner", "operator", "inactive")
HOME, AWAY = "hubA/g/p", "hubB/g/p"
RESULT_MARK = "qdashresultmark"  # the classical register: named in the result


@dataclass
class World:
    job: models.Job  # the owner's finished job, with inputs and a result
    queued: models.Job  # the owner's queued job (session S), on a backend held busy
    session: models.Session
    keys: dict[str, str]  # caller -> API key
    token_pk: int  # the owner's API key row

    def secrets(self) -> dict[str, str]:
        return {
            "job": self.job.uid,
            "queued": self.queued.uid,
            "session": self.session.uid,
            "params": self.job.params["pubs"][0][0]["__value__"][:40],  # the encoded circuit
            "result": RESULT_MARK,
            "instance": HOME,
            "key": self.keys["owner"],
        }


def _user(name: str, *, home: str | None, **fields: Any) -> Any:
    account = UserFactory.build(username=name, password=None, **fields)
    account.save()
    if home:
        instance(home).members.add(account)
    return account


@pytest.fixture
def world(settings: Any) -> World:
    BackendFactory(name="sim_a")
    BackendFactory(name="sim_b")
    instance(HOME)
    instance(AWAY)
    users = {
        "other": _user("other", home=AWAY),
        "peer": _user("peer", home=HOME),
        "owner": _user("owner", home=HOME),
        "operator": _user("operator", home=HOME, is_staff=True, is_superuser=True),
        "inactive": _user("inactive", home=HOME),
    }
    keys = {name: tokens_issue(user=user)[1] for name, user in users.items()}
    token_pk = models.ApiToken.objects.get(user=users["owner"]).pk
    bell = QuantumCircuit(QuantumRegister(2, "q"), ClassicalRegister(2, RESULT_MARK))
    bell.h(0)
    bell.cx(0, 1)
    bell.measure([0, 1], [0, 1])
    params = circuits.sampler_params([bell], 100)
    now = timezone.now()
    owner = users["owner"].pk
    blocker = m.Submit(job="qblocker", instance=AWAY, backend="sim_b", duration=3_600_000_000)
    done = m.Submit(job="qdone1234567", instance=HOME, backend="sim_a", duration=1_000_000)
    eager.step(
        [blocker, done],
        at=now - timedelta(seconds=60),
        job_fields={
            "qdone1234567": {"owner_id": owner, "params": params},
        },
    )
    waiting = m.Submit(
        job="qqueued12345",
        instance=HOME,
        backend="sim_b",
        duration=1_000_000,
        session="qsess1234567",
        start_session=True,
    )
    eager.step(
        [waiting],
        at=now - timedelta(seconds=30),
        job_fields={"qqueued12345": {"owner_id": owner, "params": params}},
        session_fields={"qsess1234567": {"owner_id": owner}},
    )
    models.Job.objects.filter(uid="qdone1234567").update(result=execute("sampler", params))
    get_user_model().objects.filter(pk=users["inactive"].pk).update(is_active=False)
    return World(
        job=models.Job.objects.get(uid="qdone1234567"),
        queued=models.Job.objects.get(uid="qqueued12345"),
        session=models.Session.objects.get(uid="qsess1234567"),
        keys=keys,
        token_pk=token_pk,
    )


def browser(caller: str) -> Client:
    client = Client()
    if caller != "anonymous":
        client.force_login(get_user_model().objects.get(username=caller))
    return client


# ------------------------------------------------------------------ the rows
@dataclass(frozen=True)
class Cell:
    status: int
    reveals: frozenset[str] = frozenset()


def cells(**by_caller: tuple[int, str] | int) -> dict[str, Cell]:
    """`owner=(200, "job session")`: a status and the secrets the body may show."""
    out = {}
    for caller in CALLERS:
        value = by_caller.get(caller, by_caller.get("default"))
        assert value is not None, caller
        status, reveals = value if isinstance(value, tuple) else (value, "")
        out[caller] = Cell(status, frozenset(reveals.split()))
    return out


@dataclass(frozen=True)
class Row:
    method: str
    path: Callable[[World], str]
    expect: dict[str, Cell]
    data: Callable[[World], Any] = lambda w: None
    headers: dict[str, str] = field(default_factory=dict)


LOGIN = 302  # to the login page
MINE = "job queued session instance params result"  # everything of the owner's
SEEN = "job queued session instance result"  # what members of the instance see on pages


def STAFF_ONLY(status: int) -> dict[str, Cell]:  # noqa: N802
    return cells(
        anonymous=LOGIN, inactive=LOGIN, other=403, peer=403, owner=403, operator=(status, MINE)
    )


PAGES: dict[str, Row] = {
    "dashboard": Row(
        "GET",
        lambda w: "/",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=200,
            peer=(200, "job queued session instance"),
            owner=(200, "job queued session instance"),
            operator=(200, "job queued session instance"),
        ),
    ),
    "dashboard#job-table": Row(  # the htmx fragment
        "GET",
        lambda w: "/",
        headers={"HTTP_HX_REQUEST": "true"},
        expect=cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=200,
            peer=(200, "job queued session instance"),
            owner=(200, "job queued session instance"),
            operator=(200, "job queued session instance"),
        ),
    ),
    "login": Row("GET", lambda w: "/login/", cells(default=200)),
    "logout": Row("POST", lambda w: "/logout/", cells(default=302)),
    "submit": Row(
        "GET",
        lambda w: "/submit",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=200,
            peer=(200, "instance"),
            owner=(200, "instance session"),
            operator=(200, "instance"),
        ),
    ),
    "job": Row(
        "GET",
        lambda w: f"/jobs/{w.job.uid}",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=404,
            peer=(200, "job instance result"),
            owner=(200, "job instance result"),
            operator=(200, "job instance result"),
        ),
    ),
    # Downloads of the job's result: whoever sees the job page.
    "job_result": Row(
        "GET",
        lambda w: f"/jobs/{w.job.uid}/result.json",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=404,
            peer=(200, "result"),
            owner=(200, "result"),
            operator=(200, "result"),
        ),
    ),
    "job_bitstrings": Row(
        "GET",
        lambda w: f"/jobs/{w.job.uid}/bitstrings.json",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=404,
            peer=(200, "job result"),
            owner=(200, "job result"),
            operator=(200, "job result"),
        ),
    ),
    "session": Row(
        "GET",
        lambda w: f"/sessions/{w.session.uid}",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=404,
            peer=(200, "queued session instance"),
            owner=(200, "queued session instance"),
            operator=(200, "queued session instance"),
        ),
    ),
    "session_close": Row(
        "POST",
        lambda w: f"/sessions/{w.session.uid}/close",
        cells(anonymous=LOGIN, inactive=LOGIN, other=404, peer=403, owner=302, operator=302),
    ),
    "session_cancel": Row(
        "POST",
        lambda w: f"/sessions/{w.session.uid}/cancel",
        cells(anonymous=LOGIN, inactive=LOGIN, other=404, peer=403, owner=302, operator=302),
    ),
    "fair_share": Row(
        "GET",
        lambda w: "/fair-share",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=200,
            peer=(200, "instance queued session"),
            owner=(200, "instance queued session"),
            operator=(200, "instance queued session"),
        ),
    ),
    # Usage per instance: a researcher sees their own instances' rows only.
    "usage": Row(
        "GET",
        lambda w: "/usage",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=200,
            peer=(200, "instance"),
            owner=(200, "instance"),
            operator=(200, "instance"),
        ),
    ),
    "usage_csv": Row(
        "GET",
        lambda w: "/usage.csv",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=200,
            peer=(200, "instance"),
            owner=(200, "instance"),
            operator=(200, "instance"),
        ),
    ),
    "usage#other-instance": Row(  # asked for by name: 404 to whoever is not in it
        "GET",
        lambda w: f"/usage?instance={HOME}",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=404,
            peer=(200, "instance"),
            owner=(200, "instance"),
            operator=(200, "instance"),
        ),
    ),
    "backend": Row(  # a backend's page: its device, queue and windows, nobody's jobs
        "GET",
        lambda w: f"/backends/{w.job.backend.name}",
        cells(anonymous=LOGIN, inactive=LOGIN, default=200),
    ),
    "healthz": Row("GET", lambda w: "/healthz", cells(default=200)),
    "favicon": Row("GET", lambda w: "/favicon.ico", cells(default=200)),
    "metrics": Row("GET", lambda w: "/metrics", cells(default=200)),  # local: the test client
    "account": Row(
        "GET",
        lambda w: "/account",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=200,
            peer=(200, "instance"),
            owner=(200, "instance"),
            operator=(200, "instance"),
        ),
    ),
    # The new key is shown in the answer itself, with the account page.
    "token_create": Row(
        "POST",
        lambda w: "/account/tokens",
        cells(
            anonymous=LOGIN,
            inactive=LOGIN,
            other=200,
            peer=(200, "instance"),
            owner=(200, "instance"),
            operator=(200, "instance"),
        ),
        data=lambda w: {"name": "x"},
    ),
    "token_revoke": Row(
        "POST",
        lambda w: f"/account/tokens/{w.token_pk}/revoke",
        cells(anonymous=LOGIN, inactive=LOGIN, other=404, peer=404, owner=302, operator=404),
    ),
    # The what-if page: operators only. Without changes there is nothing to apply
    # and no reservation form to preview (400).
    "what_if": Row("GET", lambda w: "/what-if", STAFF_ONLY(200)),
    "what_if_run": Row("GET", lambda w: "/what-if/run", STAFF_ONLY(200)),
    "what_if_apply": Row("GET", lambda w: "/what-if/apply", STAFF_ONLY(400)),
    "what_if_preview": Row("POST", lambda w: "/what-if/preview", STAFF_ONLY(400)),
    # The cluster page and the fragment it polls: operators only.
    "cluster": Row("GET", lambda w: "/cluster", STAFF_ONLY(200)),
    "cluster#cluster-body": Row(
        "GET", lambda w: "/cluster", STAFF_ONLY(200), headers={"HTTP_HX_REQUEST": "true"}
    ),
}

# API operations by (method, path template); {uid} is the owner's job or session.
API_OWNER_ONLY = cells(
    anonymous=401, inactive=401, other=404, peer=404, operator=404, owner=(200, MINE)
)
API: dict[tuple[str, str], Row] = {
    ("get", "/backends"): Row(
        "GET", lambda w: "/backends", cells(anonymous=401, inactive=401, default=200)
    ),
    ("get", "/backends/{name}/configuration"): Row(
        "GET",
        lambda w: "/backends/sim_a/configuration",
        cells(anonymous=401, inactive=401, default=200),
    ),
    ("get", "/backends/{name}/properties"): Row(
        "GET",
        lambda w: "/backends/sim_a/properties",
        cells(anonymous=401, inactive=401, default=200),
    ),
    ("get", "/backends/{name}/status"): Row(
        "GET", lambda w: "/backends/sim_a/status", cells(anonymous=401, inactive=401, default=200)
    ),
    ("get", "/instances/usage"): Row(
        "GET",
        lambda w: "/instances/usage",
        cells(anonymous=401, inactive=401, other=200, default=(200, "instance")),
    ),
    ("post", "/sessions"): Row(
        "POST",
        lambda w: "/sessions",
        cells(anonymous=401, inactive=401, default=200),
        data=lambda w: {"backend": "sim_a"},
    ),
    ("get", "/sessions/{uid}"): Row(
        "GET",
        lambda w: f"/sessions/{w.session.uid}",
        cells(
            anonymous=401,
            inactive=401,
            other=404,
            peer=404,
            operator=404,
            owner=(200, "session instance"),
        ),
    ),
    ("patch", "/sessions/{uid}"): Row(
        "PATCH",
        lambda w: f"/sessions/{w.session.uid}",
        cells(
            anonymous=401,
            inactive=401,
            other=404,
            peer=404,
            operator=404,
            owner=204,
        ),
        data=lambda w: {"accepting_jobs": False},
    ),
    ("delete", "/sessions/{uid}/close"): Row(
        "DELETE",
        lambda w: f"/sessions/{w.session.uid}/close",
        cells(anonymous=401, inactive=401, other=404, peer=404, operator=404, owner=204),
    ),
    ("get", "/jobs"): Row(
        "GET",
        lambda w: "/jobs",
        cells(
            anonymous=401,
            inactive=401,
            other=200,
            peer=200,
            operator=200,
            owner=(200, "job queued session instance"),
        ),
    ),
    ("post", "/jobs"): Row(
        "POST",
        lambda w: "/jobs",
        cells(anonymous=401, inactive=401, default=201),
        data=lambda w: {"program_id": "sampler", "backend": "sim_a", "params": w.job.params},
    ),
    ("get", "/jobs/{uid}"): Row("GET", lambda w: f"/jobs/{w.job.uid}", API_OWNER_ONLY),
    ("delete", "/jobs/{uid}"): Row(
        "DELETE",
        lambda w: f"/jobs/{w.job.uid}",
        cells(anonymous=401, inactive=401, other=404, peer=404, operator=404, owner=204),
    ),
    ("get", "/jobs/{uid}/results"): Row(
        "GET",
        lambda w: f"/jobs/{w.job.uid}/results",
        cells(
            anonymous=401, inactive=401, other=404, peer=404, operator=404, owner=(200, "result")
        ),
    ),
    ("get", "/jobs/{uid}/logs"): Row(
        "GET",
        lambda w: f"/jobs/{w.job.uid}/logs",
        cells(anonymous=401, inactive=401, other=404, peer=404, operator=404, owner=200),
    ),
    ("get", "/jobs/{uid}/metrics"): Row(
        "GET",
        lambda w: f"/jobs/{w.job.uid}/metrics",
        cells(anonymous=401, inactive=401, other=404, peer=404, operator=404, owner=200),
    ),
    ("post", "/jobs/{uid}/cancel"): Row(
        "POST",
        lambda w: f"/jobs/{w.queued.uid}/cancel",
        cells(anonymous=401, inactive=401, other=404, peer=404, operator=404, owner=204),
    ),
    ("put", "/jobs/{uid}/tags"): Row(
        "PUT",
        lambda w: f"/jobs/{w.job.uid}/tags",
        cells(anonymous=401, inactive=401, other=404, peer=404, operator=404, owner=204),
        data=lambda w: {"tags": ["t"]},
    ),
}
IDENTITY: dict[tuple[str, str], Row] = {
    ("post", "/identity/token"): Row(
        "POST", lambda w: "/identity/token", cells(anonymous=401, inactive=401, default=200)
    ),
}
# Other routes the API modules serve: the schema and its docs (public), and the roots.
API_EXTRA_NAMES = {"openapi-json", "openapi-view", "api-root"}


# -------------------------------------------------------------- enumeration
def route_names() -> set[str]:
    """Every named route of the URL conf outside the admin and the API modules."""
    names: set[str] = set()

    def walk(patterns: list[Any], namespace: str | None) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace is None:
                names.add(pattern.name or str(pattern.pattern))

    walk(get_resolver().url_patterns, None)
    return names


def api_operations(which: Any) -> set[tuple[str, str]]:
    schema = which.get_openapi_schema()
    ops = set()
    for path, methods in schema["paths"].items():
        short = path.removeprefix("/api/v1").removeprefix("/experimental/api/v1")
        ops |= {(method, short) for method in methods}
    return ops


def test_every_endpoint_has_a_row() -> None:
    pages = {name.split("#")[0] for name in PAGES}
    assert route_names() == pages, "a page route without a row (or a row without a route)"
    assert api_operations(api) == set(API), "an API operation without a row"
    assert api_operations(experimental_api) == set(API)
    assert api_operations(identity_api) == set(IDENTITY)
    names = {
        p.name
        for r in get_resolver().url_patterns
        if isinstance(r, URLResolver) and r.namespace and r.namespace.startswith("qdash-")
        for p in r.url_patterns
        if isinstance(p, URLPattern)
    }
    unknown = {
        n for n in names if not n.startswith(("qdash-api", "identity")) and n not in API_EXTRA_NAMES
    }
    assert not unknown, unknown


# ------------------------------------------------------------------- checks
def leaked(body: str, world: World, allowed: frozenset[str]) -> set[str]:
    return {name for name, secret in world.secrets().items() if secret in body} - allowed


def body_of(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages(world: World, name: str, caller: str) -> None:
    row, cell = PAGES[name], PAGES[name].expect[caller]
    client = browser(caller)
    call = getattr(client, row.method.lower())
    response = call(row.path(world), row.data(world) or {}, **row.headers)
    assert response.status_code == cell.status, (name, caller, body_of(response)[:300])
    if caller in ("anonymous", "inactive") and cell.status == LOGIN and name != "logout":
        assert "/login/" in response["Location"]
    assert not leaked(body_of(response), world, cell.reveals), (name, caller)


def api_call(world: World, row: Row, caller: str, prefix: str) -> Any:
    client = Client()
    headers = {}
    if caller != "anonymous":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {world.keys[caller]}"
        headers["HTTP_SERVICE_CRN"] = instance_crn(AWAY if caller == "other" else HOME)
    data = row.data(world)
    body = json.dumps(data) if data is not None else ""
    return client.generic(
        row.method, prefix + row.path(world), body, content_type="application/json", **headers
    )


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("op", sorted(API), ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("prefix", ["/api/v1", "/experimental/api/v1"])
def test_api(world: World, prefix: str, op: tuple[str, str], caller: str) -> None:
    row = API[op]
    cell = row.expect[caller]
    response = api_call(world, row, caller, prefix)
    assert response.status_code == cell.status, (op, caller, body_of(response)[:300])
    assert not leaked(body_of(response), world, cell.reveals), (op, caller)


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS)
def test_identity(world: World, caller: str) -> None:
    key = "qdash_wrong" if caller == "anonymous" else world.keys[caller]
    response = Client().post("/identity/token", {"apikey": key, "grant_type": "x"})
    assert response.status_code == IDENTITY[("post", "/identity/token")].expect[caller].status
    assert not leaked(body_of(response), world, frozenset())


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS)
def test_admin(world: World, caller: str) -> None:
    """Every registered model's list, and the admin's index: operators only."""
    client = browser(caller)
    urls = ["/admin/"] + [
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for model in admin.site._registry
    ]
    for url in urls:
        response = client.get(url)
        if caller == "operator":
            assert response.status_code == 200, url
        else:
            assert response.status_code == 302 and "/admin/login/" in response["Location"], url


# ---------------------------------------------------------------- websocket
WS_PAGES = {
    "job": lambda w: f"page=job&uid={w.job.uid}",
    "session": lambda w: f"page=session&uid={w.session.uid}",
    "dashboard": lambda w: "page=dashboard",
    "fair_share": lambda w: "page=fair_share",
}
WS_REVEALS = {
    "other": "",
    "peer": SEEN,
    "owner": SEEN,
    "operator": SEEN,
}


def ws_messages(query: str, caller: str) -> tuple[bool, list[str]]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser

    from scheduler.consumers.dashboard import DashboardConsumer

    user = (
        AnonymousUser() if caller == "anonymous" else get_user_model().objects.get(username=caller)
    )

    async def run() -> tuple[bool, list[str]]:
        communicator = WebsocketCommunicator(DashboardConsumer.as_asgi(), f"/ws/live?{query}")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        messages = []
        while connected and not await communicator.receive_nothing(timeout=0.5):
            messages.append(await communicator.receive_from())
        await communicator.disconnect()
        return connected, messages

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("page", sorted(WS_PAGES))
def test_websocket(world: World, page: str, caller: str) -> None:
    from django.contrib.auth import get_user_model

    if caller == "inactive":  # its session stops authenticating: the socket sees no user
        assert not get_user_model().objects.get(username="inactive").is_active
        caller_for_socket = "anonymous"
    else:
        caller_for_socket = caller
    connected, messages = ws_messages(WS_PAGES[page](world), caller_for_socket)
    if caller_for_socket == "anonymous":
        assert not connected
        return
    body = "\n".join(messages)
    assert not leaked(body, world, frozenset(WS_REVEALS[caller].split())), (page, caller)
    if page == "job" and caller in ("peer", "owner", "operator"):
        assert RESULT_MARK in body  # the status fragment (with results) reaches those who may
    if page == "job" and caller == "other":
        assert messages == []

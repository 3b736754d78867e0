"""The submission page: a one-PUB Sampler or Estimator job from OpenQASM, maybe in a session."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.test import Client, override_settings
from django.utils import timezone

from scheduler import circuits, models, services
from scheduler.policy import model as m
from scheduler.submission import sessions_create
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = pytest.mark.django_db

BELL = circuits.EXAMPLES["bell"]
HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'


@pytest.fixture
def backend() -> models.Backend:
    return BackendFactory(name="sim_a", num_qubits=5)


@pytest.fixture
def alice(backend: models.Backend) -> AbstractBaseUser:
    user = UserFactory(username="alice")
    instance("hubA/g/p").members.add(user)
    instance("hubB/g/p")
    return user


@pytest.fixture
def researcher(client: Client, alice: AbstractBaseUser) -> Client:
    client.force_login(alice)
    return client


def form(**fields: Any) -> dict[str, Any]:
    """A valid Bell sampler submission, with `fields` changed."""
    data = {
        "backend": "sim_a",
        "instance": "hubA/g/p",
        "primitive": "sampler",
        "shots": "1000",
        "precision": "",
        "observables": "",
        "circuit": BELL,
        "session": "",
        "max_execution_time": "",
    }
    return {**data, **fields}


def job_of(response: Any) -> models.Job:
    assert response.status_code == 302, response.content.decode()[:2000]
    uid = response["Location"].removeprefix("/jobs/")
    return models.Job.objects.get(uid=uid)


def test_it_sends_anonymous_users_to_login(client: Client) -> None:
    for response in (client.get("/submit"), client.post("/submit", form())):
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    assert models.Job.objects.count() == 0


def test_it_offers_only_my_instances_and_the_examples(researcher: Client) -> None:
    html = researcher.get("/submit").content.decode()
    assert '<option value="hubA/g/p"' in html
    assert "hubB/g/p" not in html
    assert '<option value="sim_a"' in html and "sim_a (5 qubits)" in html
    assert "---------" not in html  # required choices start on a real option
    assert 'id="qasm-examples"' in html and "Bell pair" in html  # the examples' JSON
    assert 'data-example="bell"' in html and 'data-example="qft"' in html
    assert 'href="/submit"' in html  # the nav links the page


def test_it_queues_a_bell_sampler_job_and_shows_its_page(
    researcher: Client, alice: AbstractBaseUser
) -> None:
    response = researcher.post("/submit", form(max_execution_time="30"))
    job = job_of(response)
    assert job.owner == alice and job.program_id == "sampler"
    assert job.instance.path == "hubA/g/p" and job.backend.name == "sim_a"
    assert job.status == m.RUNNING and job.session is None  # sim_a was idle
    assert job.max_execution_time == timedelta(seconds=30)
    (pub,) = circuits.decode_pubs("sampler", job.params)
    assert pub.circuit.num_qubits == 2 and pub.shots == 1000
    page = researcher.get(response["Location"]).content.decode()
    assert job.uid in page and "Running" in page
    assert 'class="messages"' not in page


def test_it_queues_an_estimator_job_with_observables(researcher: Client) -> None:
    data = form(primitive="estimator", shots="", precision="0.02", observables="zz, XX ,YY")
    job = job_of(researcher.post("/submit", data))
    assert job.program_id == "estimator"
    (pub,) = circuits.decode_pubs("estimator", job.params)
    assert pub.precision == 0.02 and pub.observables.shape == (3,)
    assert pub.circuit.num_qubits == 2 and not pub.circuit.cregs  # measurements dropped


@pytest.mark.parametrize(
    "fields, field, message",
    [
        (
            {"circuit": HEADER + "qreg q[2]\nh q[0];\n"},
            "circuit",
            "line 4: needed &#x27;;&#x27;, but instead saw an identifier",
        ),
        (
            {"circuit": "OPENQASM 3.0;\nqubit[2] q;\nbit[2] c;\nh q[0]\nc = measure q;\n"},
            "circuit",
            "line 5: syntax error at &#x27;c&#x27;",
        ),
        (
            {"circuit": HEADER + "qreg q[2];\ncreg c[2];\nfoo q[0];\nmeasure q -> c;\n"},
            "circuit",
            "line 5: &#x27;foo&#x27; is not defined in this scope",
        ),
        (
            {"circuit": HEADER + "qreg q[6];\ncreg c[6];\nh q[0];\nmeasure q -> c;\n"},
            "circuit",
            "line 3: the program declares 6 qubits; at most 5 are allowed",
        ),
        (
            {"circuit": "OPENQASM 2.0;\nqreg q[10**30];\n"},
            "circuit",
            "line 2: needed &#x27;]&#x27;",
        ),
        (  # the parser passed it on, and building the gate raised TypeError
            {"circuit": HEADER + "qreg q[2];\ncreg c[2];\nrz q[0];\nmeasure q -> c;\n"},
            "circuit",
            "a gate is missing its parameters",
        ),
        (  # the OpenQASM 2 lexer panicked on an integer it cannot hold
            {"circuit": "OPENQASM 2.0;\nqreg q[99999999999999999999\n"},
            "circuit",
            "an integer in the program is too large",
        ),
        (
            {"circuit": BELL + "// " + "x" * 100_000},
            "circuit",
            "at most 100000 are allowed",
        ),
        (  # a loop counts once per iteration: a trillion x gates
            {
                "circuit": 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\nbit[1] c;\n'
                "for int i in [0:1000000000000] { x q[0]; }\nc[0] = measure q[0];\n"
            },
            "circuit",
            "the circuit has 1000000000002 instructions once its loops are unrolled",
        ),
        (  # a loop that may never end
            {
                "circuit": 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\nbit[1] c;\n'
                "c[0] = measure q[0];\n"
                "while (c[0] == false) { x q[0]; x q[0]; c[0] = measure q[0]; }\n"
            },
            "circuit",
            "while loops are not supported",
        ),
        ({"shots": "100001"}, "circuit", "pub 0 has 100001 shots; at most 100000 are allowed"),
        (
            {"circuit": HEADER + "qreg q[2];\nh q[0];\n"},
            "circuit",
            "no classical register to sample",
        ),
        ({"circuit": "h q[0];\n"}, "circuit", "line 1: expected an"),
        (
            {"primitive": "estimator", "observables": "ZZZ"},
            "observables",
            "&#x27;ZZZ&#x27; acts on 3 qubits; the circuit has 2",
        ),
        (
            {"primitive": "estimator", "observables": "ZQ"},
            "observables",
            "&#x27;ZQ&#x27; is not a Pauli string",
        ),
        ({"primitive": "estimator", "observables": " , "}, "observables", "at least one"),
        ({"instance": "hubB/g/p"}, "instance", "Select a valid choice"),
        ({"backend": "sim_nowhere"}, "backend", "Select a valid choice"),
        ({"shots": "0"}, "shots", "greater than or equal to 1"),
        ({"max_execution_time": "-5"}, "max_execution_time", "greater than or equal to 1"),
        ({"session": "qnosuchsession"}, "session", "Unknown session."),
    ],
)
def test_it_shows_bad_input_next_to_its_field_and_stores_nothing(
    researcher: Client, fields: dict[str, str], field: str, message: str
) -> None:
    response = researcher.post("/submit", form(**fields))
    assert response.status_code == 200
    html = response.content.decode()
    errors = html.split(f'id="id_{field}_error"', 1)
    assert len(errors) == 2, html
    assert message in errors[1].split("</ul>", 1)[0]
    assert models.Job.objects.count() == 0
    assert models.Session.objects.count() == 0


@pytest.mark.parametrize("size", ["10000000", "100000000000000000000000000000"])
def test_a_huge_register_is_refused_before_any_circuit_is_built(
    researcher: Client, size: str
) -> None:
    import psutil

    before = psutil.Process().memory_info().rss
    response = researcher.post("/submit", form(circuit=f"OPENQASM 2.0;\nqreg q[{size}];\n"))
    grown = psutil.Process().memory_info().rss - before
    assert f"the program declares {size} qubits; at most 5 are allowed" in response.content.decode()
    assert grown < 50 * 2**20  # ten million qubits took gigabytes when they were built
    assert models.Job.objects.count() == 0


def test_an_htmx_submission_gets_the_form_partial_or_a_redirect(researcher: Client) -> None:
    bad = researcher.post("/submit", form(circuit="nonsense"), headers={"HX-Request": "true"})
    assert bad.status_code == 200
    assert bad.content.decode().lstrip().startswith('<form id="submit-form"')
    good = researcher.post("/submit", form(), headers={"HX-Request": "true"})
    assert good["HX-Redirect"] == f"/jobs/{models.Job.objects.get().uid}"


def test_it_starts_a_session_and_joins_it(researcher: Client, alice: AbstractBaseUser) -> None:
    first = job_of(researcher.post("/submit", form(session="new")))
    session = first.session
    assert session is not None and session.uid == first.uid and session.owner == alice
    assert f'<option value="{session.uid}" data-backend="sim_a">' in (
        researcher.get("/submit").content.decode()
    )
    second = job_of(researcher.post("/submit", form(session=session.uid)))
    assert second.session == session


def test_it_refuses_a_closed_session(researcher: Client, alice: AbstractBaseUser) -> None:
    backend, node = models.Backend.objects.get(), models.Instance.objects.get(path="hubA/g/p")
    session, _ = sessions_create(owner=alice, backend=backend, instance=node)
    services.sessions_close(session=session)
    assert session.uid not in researcher.get("/submit").content.decode()
    response = researcher.post("/submit", form(session=session.uid))
    assert response.status_code == 200
    assert "The session is closed and accepts no more jobs." in response.content.decode()
    assert models.Job.objects.count() == 0


@pytest.mark.parametrize("session", ["", "new"])
def test_a_used_up_refuse_allocation_is_shown_next_to_the_instance(
    researcher: Client, session: str
) -> None:
    services.allocations_set(path="hubA", seconds=0, enforce="refuse")

    response = researcher.post("/submit", form(session=session))

    assert response.status_code == 200
    errors = response.content.decode().split('id="id_instance_error"', 1)
    assert len(errors) == 2
    assert "hubA has used 0 s of its 0 s allocation" in errors[1].split("</ul>", 1)[0]
    assert models.Job.objects.count() == 0 and models.Session.objects.count() == 0


def test_it_refuses_another_users_session(researcher: Client, backend: models.Backend) -> None:
    bob = UserFactory(username="bob")
    node = models.Instance.objects.get(path="hubA/g/p")
    node.members.add(bob)
    session, _ = sessions_create(owner=bob, backend=backend, instance=node)
    assert session.uid not in researcher.get("/submit").content.decode()
    response = researcher.post("/submit", form(session=session.uid))
    assert response.status_code == 200 and "Unknown session." in response.content.decode()
    assert models.Job.objects.count() == 0


def test_it_refuses_my_session_on_another_backend(
    researcher: Client, alice: AbstractBaseUser
) -> None:
    other = BackendFactory(name="sim_b")
    node = models.Instance.objects.get(path="hubA/g/p")
    session, _ = sessions_create(owner=alice, backend=other, instance=node)
    response = researcher.post("/submit", form(session=session.uid))
    assert "The session runs on another backend." in response.content.decode()
    assert models.Job.objects.count() == 0


def test_it_warns_that_a_reservation_may_bind_the_new_session(
    researcher: Client, backend: models.Backend
) -> None:
    start = timezone.now() + timedelta(hours=1)
    models.Reservation.objects.create(
        backend=backend,
        instance=models.Instance.objects.get(path="hubA/g/p"),
        start=start,
        end=start + timedelta(minutes=30),
    )
    response = researcher.post("/submit", form(session="new"), follow=True)
    html = response.content.decode()
    assert response.redirect_chain[0][0].startswith("/jobs/")
    assert '<li class="message warning"' in html
    assert "A reservation of this instance on this backend opens at" in html
    # Shown once: the next page has no banner.
    assert "A reservation of this instance" not in researcher.get("/submit").content.decode()


@override_settings(QDASH_MAX_QUEUED_PER_USER=1)
def test_it_refuses_past_the_users_limit_of_queued_jobs(
    researcher: Client, backend: models.Backend
) -> None:
    services.backends_set_status(backend=backend, status=m.PAUSED)
    researcher.post("/submit", form())

    response = researcher.post("/submit", form())

    assert response.status_code == 200
    assert "jobs queued" in response.content.decode()
    assert models.Job.objects.count() == 1

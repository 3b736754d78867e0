"""The timing model: overhead, compile time per structure not yet in the session, shots."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler import circuits, models, services
from scheduler.devices import timing
from scheduler.devices.checks import CircuitRun
from scheduler.policy import model as m
from scheduler.submission import jobs_submit, sessions_create
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = pytest.mark.django_db


def backend(**fields: object) -> models.Backend:
    return BackendFactory(
        name="sim_t",
        job_overhead=timedelta(seconds=2),
        compile_time=timedelta(seconds=1),
        shot_time=timedelta(microseconds=100),
        **fields,
    )


def test_the_modeled_time_adds_overhead_compiles_and_shots() -> None:
    runs = [CircuitRun("a", 1000, 2e-6), CircuitRun("a", 1000, 2e-6), CircuitRun("b", 10, 0.0)]
    result = timing.job_timing(backend=backend(), runs=runs, cached_keys=set())
    # 2 s + 2 structures × 1 s + 2010 shots × 100 µs + 2000 shots × 2 µs
    assert result.duration == timedelta(seconds=4, microseconds=201_000 + 4_000)
    assert result.keys == ["a", "b"] and result.cached == 0 and result.saved == timedelta(0)
    cached = timing.job_timing(backend=backend(), runs=runs, cached_keys={"a"})
    assert cached.cached == 1 and cached.saved == timedelta(seconds=1)
    assert result.duration - cached.duration == timedelta(seconds=1)


def test_repeat_jobs_in_a_session_are_charged_less_from_the_sessions_cache() -> None:
    sim = backend()
    user = UserFactory(username="u")
    node = instance("h/g/p")
    params = circuits.sampler_params([circuits.ghz(2)], 1000)
    session, _ = sessions_create(owner=user, backend=sim, instance=node)
    jobs = [
        jobs_submit(
            owner=user,
            backend=sim,
            instance=node,
            program_id="sampler",
            params=params,
            session_id=session.uid,
        ).job
        for _ in range(3)
    ]
    first, second, third = (job.expected_duration for job in jobs)
    assert first == timedelta(seconds=3, microseconds=100_000)
    assert second == third == first - timedelta(seconds=1)
    assert [job.cached_circuits for job in jobs] == [0, 1, 1]
    outside = jobs_submit(
        owner=user, backend=sim, instance=node, program_id="sampler", params=params
    ).job
    assert outside.expected_duration == first  # no session: nothing cached


def test_a_job_cancelled_before_it_ran_leaves_nothing_in_the_cache() -> None:
    sim = backend()
    services.backends_set_status(backend=sim, status=models.Backend.Status.PAUSED)
    node = instance("h/g/p")
    session, _ = sessions_create(owner=None, backend=sim, instance=node)
    params = circuits.sampler_params([circuits.ghz(3)], 10)
    job = jobs_submit(
        owner=None,
        backend=sim,
        instance=node,
        program_id="sampler",
        params=params,
        session_id=session.uid,
    ).job
    assert timing.session_cache(session) == set(job.circuit_keys)
    assert services.jobs_cancel(job=job).status == m.CANCELLED
    assert timing.session_cache(session) == set()

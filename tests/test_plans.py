"""The published plan: made by the leader (here or in a forked process), read per job."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from scheduler import models, plans
from scheduler.clock import from_ticks, to_ticks
from scheduler.engine.step import Leader
from scheduler.policy import make_plan
from scheduler.policy import model as m
from tests.factories import BackendFactory, instance, queue_job

T0 = from_ticks(1_900_000_000_000_000)
SECOND = timedelta(seconds=1)


@pytest.fixture
def world(settings: Any) -> Leader:
    """Two backends, three instances, and a queue with a session, waiting for a leader."""
    settings.QDASH_EAGER_LEADER = False
    for name in ("sim_a", "sim_b"):
        BackendFactory(name=name)
    for path in ("h/a/p", "h/b/p", "h/c/p"):
        instance(path)
    queue_job("a1", inst="h/a/p", at=T0, duration=30)
    queue_job("s1", inst="h/b/p", at=T0, duration=5, start_session=True, session="sb")
    queue_job("c1", inst="h/c/p", at=T0 + SECOND, duration=10)
    queue_job("s2", inst="h/b/p", at=T0 + 2 * SECOND, duration=5, session="sb")
    queue_job("a2", inst="h/a/p", at=T0 + 3 * SECOND, duration=20, backend="sim_b")
    queue_job("c2", inst="h/c/p", at=T0 + 3 * SECOND, duration=10, backend="sim_b")
    queue_job("b1", inst="h/b/p", at=T0 + 4 * SECOND, duration=7, backend="sim_b")
    leader = Leader()
    leader.step(to_ticks(T0 + 4 * SECOND))
    return leader


@pytest.mark.django_db
def test_estimates_from_the_published_plan_equal_the_actual_starts(world: Leader) -> None:
    assert world.policy is not None
    plans.Publisher().publish(make_plan(world.policy, to_ticks(T0 + 4 * SECOND)))
    view = plans.current()
    assert view is not None
    queued = list(models.Job.objects.filter(status=m.QUEUED).values_list("uid", flat=True))
    estimates = {uid: plans.entry(view, uid) for uid in queued}
    assert len(queued) >= 4 and all(estimates.values())

    while (due := world.next_due()) is not None:  # nothing new arrives
        world.step(due)

    for uid, entry in estimates.items():
        assert entry is not None
        job = models.Job.objects.get(uid=uid)
        assert from_ticks(entry.start) == job.started_at, uid
        assert entry.backend == job.backend.name
    positions = sorted((e.backend, e.position) for e in estimates.values() if e)
    assert positions == sorted(
        (b, n + 1)
        for b in ("sim_a", "sim_b")
        for n in range(sum(1 for e in estimates.values() if e and e.backend == b))
    )


@pytest.mark.django_db
def test_the_header_holds_each_backends_state_and_head(world: Leader) -> None:
    assert world.policy is not None
    plans.Publisher().publish(make_plan(world.policy, to_ticks(T0 + 4 * SECOND)))
    view = plans.current()
    assert view is not None
    a = view.backends["sim_a"]
    assert a.running is not None and a.running["job"] == "a1"
    assert [h["job"] for h in a.head][:1] == ["s1"]
    assert sum(a.depths.values()) == 3


@pytest.mark.django_db
def test_a_publisher_rewrites_only_the_pages_that_changed(
    world: Leader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plans, "PAGE_ENTRIES", 1)  # one entry per page: 4+ pages
    publisher = plans.Publisher()
    assert world.policy is not None
    plan = make_plan(world.policy, to_ticks(T0 + 4 * SECOND))
    first = publisher.publish(plan)
    again = publisher.publish(plan)
    assert first == models.PlanPage.objects.count() >= 4
    assert again == 0


@pytest.mark.django_db
def test_pages_say_when_a_plan_is_stale(world: Leader) -> None:
    assert world.policy is not None
    at = T0 + 4 * SECOND  # the leader's state is as of its last step
    plans.Publisher().publish(make_plan(world.policy, to_ticks(at)), made_at=at + 2 * SECOND)
    view = plans.current()
    assert view is not None and view.at == at
    assert not view.stale(at + 5 * SECOND) and view.stale(at + 6 * SECOND)


@pytest.mark.django_db(transaction=True)
def test_a_long_queue_is_planned_in_a_forked_process(world: Leader) -> None:
    published: list[None] = []
    # Fork whatever the queue's length.
    planner = plans.Planner(fork_at=0, on_publish=lambda **_: published.append(None))
    assert world.policy is not None
    planner.publish(world.policy, to_ticks(T0 + 4 * SECOND))
    assert planner.child is not None
    deadline = time.monotonic() + 60
    while planner.child is not None and time.monotonic() < deadline:
        planner.due()  # reaps the child when it is done
        time.sleep(0.05)
    assert planner.child is None and published == [None]
    view = plans.current()
    assert view is not None and plans.entry(view, "c1") is not None
    world.step(to_ticks(T0 + 5 * SECOND))  # the leader's own connection still works
    assert models.Job.objects.filter(status=m.RUNNING).count() == 2


def _published() -> dict[str, Any]:
    """Every entry of the published plan, read back from its pages."""
    import json

    out: dict[str, Any] = {}
    for text in models.PlanPage.objects.values_list("entries", flat=True):
        out.update(json.loads(text))
    return out


def _reap(planner: plans.Planner) -> None:
    deadline = time.monotonic() + 60
    while planner.child is not None and time.monotonic() < deadline:
        planner.due()
        time.sleep(0.05)
    assert planner.child is None


@pytest.mark.django_db(transaction=True)
def test_forked_incremental_plans_publish_what_a_full_replay_gives(world: Leader) -> None:
    planner = plans.Planner(fork_at=0, on_publish=lambda **_: None)
    assert world.policy is not None
    planner.publish(world.policy, to_ticks(T0 + 4 * SECOND))
    _reap(planner)
    assert planner.last["replayed"] == ["sim_a", "sim_b"]  # the first plan: everything
    queue_job("b2", inst="h/c/p", at=T0 + 5 * SECOND, duration=3, backend="sim_b")
    report = world.step(to_ticks(T0 + 5 * SECOND))
    planner.changed(report.instant)
    planner.publish(world.policy, to_ticks(T0 + 5 * SECOND))
    _reap(planner)
    expected = make_plan(world.policy, to_ticks(T0 + 5 * SECOND)).entries
    assert _published() == {uid: plans._row(e) for uid, e in expected.items()}
    # The leader's publisher knows what the child wrote: a page rewritten from it
    # holds the same entries.
    assert planner.publisher.content is not None
    held = {uid: row for page in planner.publisher.content for uid, row in page.items()}
    assert held == _published()


@pytest.mark.django_db
def test_without_incremental_plans_every_plan_is_a_full_replay_once_a_second(
    world: Leader, settings: Any
) -> None:
    settings.QDASH_PLAN_INCREMENTAL = False
    planner = plans.Planner(fork_at=10**9, on_publish=lambda **_: None)
    assert planner.interval == 1.0
    assert world.policy is not None
    for n in range(2):
        planner.changed()
        planner.publish(world.policy, to_ticks(T0 + (4 + n) * SECOND))
    assert planner.full == 2 and not planner.cache.valid
    view = plans.current()
    assert view is not None and plans.entry(view, "c1") is not None

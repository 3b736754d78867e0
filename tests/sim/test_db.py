"""`simulate --engine db` gives the memory engine's trace, instant by instant."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import pytest

from scheduler.engine import save
from scheduler.engine.step import Leader
from scheduler.policy import model as m
from scheduler.sim.db import DbEngine
from scheduler.sim.memory import MemoryEngine
from scheduler.sim.run import simulate
from scheduler.sim.scenario import Scenario, parse_scenario
from tests.policy.scenario_strategies import random_scenario

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seed", range(12))
def test_db_engine_matches_memory_engine_on_random_scenarios(seed: int) -> None:
    scenario = parse_scenario(json.dumps(random_scenario(random.Random(seed), n_events=40)))

    memory = simulate(scenario, MemoryEngine(scenario))
    database = simulate(scenario, DbEngine(scenario))

    assert database == memory
    assert memory["jobs"], "the scenario should have jobs"


@pytest.mark.parametrize("seed", range(12))
def test_db_engine_matches_memory_engine_on_random_scenarios_with_allocations(seed: int) -> None:
    document = random_scenario(random.Random(2000 + seed), n_events=40, allocations=True)
    scenario = parse_scenario(json.dumps(document))

    memory = simulate(scenario, MemoryEngine(scenario))
    database = simulate(scenario, DbEngine(scenario))

    assert database == memory
    assert "allocations" in document or any("put_allocation" in e for e in document["events"])


class KilledLeader(BaseException):
    pass


def crash_once(monkeypatch: pytest.MonkeyPatch, *, at_step: int) -> None:
    """The `at_step`th step dies half-way through its writes (after its jobs, sessions
    and charges were written, before its log), once."""
    write_log = save._save_log
    steps = 0

    def dying_log(*args: Any, **kwargs: Any) -> None:
        nonlocal steps
        steps += 1
        if steps == at_step:
            raise KilledLeader
        write_log(*args, **kwargs)

    monkeypatch.setattr(save, "_save_log", dying_log)


class FailingOverEngine(DbEngine):
    """The database engine whose leader dies mid-step; a standby rebuilds and carries on."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.failovers = 0

    def run_instant(self, t: int, actions: Sequence[m.Action]) -> list[m.Outcome]:
        try:
            return super().run_instant(t, actions)
        except KilledLeader:
            self.failovers += 1
            self.leader = Leader(settings=self.scenario.settings)  # the standby
            return super().run_instant(t, actions)  # the step's inputs are still there


@pytest.mark.parametrize("seed", range(6))
def test_a_leader_killed_in_a_busy_queue_is_replaced_without_changing_the_trace(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(1000 + seed)
    scenario = parse_scenario(json.dumps(random_scenario(rng, n_events=60)))
    memory = simulate(scenario, MemoryEngine(scenario))

    failing = FailingOverEngine(scenario)
    crash_once(monkeypatch, at_step=rng.randint(5, 30))
    database = simulate(scenario, failing)

    assert failing.failovers == 1
    assert database == memory


@pytest.mark.parametrize(("seed", "chunk"), [(s, c) for s in range(6) for c in (1, 7, 1000)])
def test_steps_of_many_instants_give_the_same_trace(seed: int, chunk: int) -> None:
    scenario = parse_scenario(json.dumps(random_scenario(random.Random(500 + seed), n_events=50)))

    assert DbEngine(scenario).run(chunk=chunk) == simulate(scenario, MemoryEngine(scenario))

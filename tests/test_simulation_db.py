"""`simulate --engine db` gives the memory engine's trace, instant by instant."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import pytest

from scheduler import engine
from scheduler.policy import model as m
from scheduler.simulation import MemoryEngine, Scenario, parse_scenario, simulate
from scheduler.simulation_db import DbEngine
from tests.policy.scenario_strategies import random_scenario

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seed", range(12))
def test_db_engine_matches_memory_engine_on_random_scenarios(seed: int) -> None:
    scenario = parse_scenario(json.dumps(random_scenario(random.Random(seed), n_events=40)))

    memory = simulate(scenario, MemoryEngine(scenario))
    database = simulate(scenario, DbEngine(scenario))

    assert database == memory
    assert memory["jobs"], "the scenario should have jobs"


class CrashingLeader(engine.Leader):
    """A leader whose step dies half-way through its writes, once, at step `crash_at`."""

    def __init__(self, *, crash_at: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crash_at = crash_at
        self.steps = 0

    def _save_log(self, *args: Any, **kwargs: Any) -> None:
        self.steps += 1
        if self.steps == self.crash_at:
            raise KilledLeader  # after the jobs, sessions and charges were written
        super()._save_log(*args, **kwargs)


class KilledLeader(BaseException):
    pass


class FailingOverEngine(DbEngine):
    """The database engine whose leader dies mid-step; a standby rebuilds and carries on."""

    def __init__(self, scenario: Scenario, crash_at: int) -> None:
        super().__init__(scenario)
        self.leader = CrashingLeader(crash_at=crash_at, settings=scenario.settings)
        self.leader.load(0)
        self.failovers = 0

    def run_instant(self, t: int, actions: Sequence[m.Action]) -> list[m.Outcome]:
        try:
            return super().run_instant(t, actions)
        except KilledLeader:
            self.failovers += 1
            self.leader = engine.Leader(settings=self.scenario.settings)  # the standby
            return super().run_instant(t, actions)  # the step's inputs are still there


@pytest.mark.parametrize("seed", range(6))
def test_a_leader_killed_in_a_busy_queue_is_replaced_without_changing_the_trace(seed: int) -> None:
    rng = random.Random(1000 + seed)
    scenario = parse_scenario(json.dumps(random_scenario(rng, n_events=60)))
    memory = simulate(scenario, MemoryEngine(scenario))

    failing = FailingOverEngine(scenario, crash_at=rng.randint(5, 30))
    database = simulate(scenario, failing)

    assert failing.failovers == 1
    assert database == memory


@pytest.mark.parametrize(("seed", "chunk"), [(s, c) for s in range(6) for c in (1, 7, 1000)])
def test_steps_of_many_instants_give_the_same_trace(seed: int, chunk: int) -> None:
    scenario = parse_scenario(json.dumps(random_scenario(random.Random(500 + seed), n_events=50)))

    assert DbEngine(scenario).run(chunk=chunk) == simulate(scenario, MemoryEngine(scenario))

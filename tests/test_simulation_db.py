"""`simulate --engine db` gives the memory engine's trace, instant by instant."""

from __future__ import annotations

import json
import random

import pytest

from scheduler.simulation import MemoryEngine, parse_scenario, simulate
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

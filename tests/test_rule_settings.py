"""The scheduling settings' one home: the deployment and `simulate` share the defaults."""

from __future__ import annotations

import json
from typing import Any

from scheduler.rule_settings import DEFAULTS, deployment_settings, settings_in_ticks
from scheduler.sim.scenario import parse_scenario

SECOND = 1_000_000


def test_a_scenario_and_a_deployment_with_nothing_set_schedule_alike(settings: Any) -> None:
    settings.QDASH = {name.upper(): value for name, value in DEFAULTS.items()}
    scenario = parse_scenario(json.dumps({"backends": [{"name": "a"}]}))

    assert deployment_settings() == scenario.settings == settings_in_ticks({})
    assert scenario.settings.batch_interactive_ttl == 1 * SECOND


def test_the_deployment_reads_its_settings_in_seconds(settings: Any) -> None:
    settings.QDASH = {**settings.QDASH, "INTERACTIVE_TTL": 2.5, "OPEN_TIMEOUT": 10}

    rules = deployment_settings()

    assert rules.interactive_ttl == 2_500_000 and rules.open_timeout == 10 * SECOND

"""The scheduling rules' settings: their defaults, and this deployment's, in ticks.

The defaults (seconds) live here once: `qdash/settings.py` reads them for the
`QDASH_*` environment settings, `simulate` for a scenario's missing keys. The
web processes read the deployment's settings in ticks from here as well (a
session's timers are set when its row is stored), never from the leader.
"""

from __future__ import annotations

from collections.abc import Mapping

from scheduler.clock import seconds_ticks
from scheduler.policy import model as m

# Seconds (docs/rules.md). A batch session's own interactive timeout is short, so a
# batch does not hold its backend between jobs.
DEFAULTS: dict[str, int] = {
    "interactive_ttl": 60,
    "batch_interactive_ttl": 1,
    "system_max_ttl": 28800,
    "open_timeout": 1800,
    "usage_window": 2419200,
    "backend_max_runtime": 10800,
}


def settings_in_ticks(seconds: Mapping[str, float]) -> m.Settings:
    """The policy's settings from values in seconds (a missing key: its default)."""
    values = {**DEFAULTS, **seconds}
    return m.Settings(**{name: seconds_ticks(values[name]) for name in DEFAULTS})


def deployment_settings() -> m.Settings:
    """The scheduling settings of this deployment (`QDASH_*`), in ticks."""
    from django.conf import settings

    return settings_in_ticks({name: settings.QDASH[name.upper()] for name in DEFAULTS})

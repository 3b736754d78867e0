"""A new session's timers (docs/rules.md, "Sessions"): interactive timeout by mode,
the max TTL capped at the system limit, the open deadline."""

from __future__ import annotations

import pytest

from scheduler.policy import timers
from tests.policy.helpers import make_settings

SETTINGS = make_settings(interactive_ttl=60, batch_interactive_ttl=1, system_max_ttl=100)


@pytest.mark.parametrize(("mode", "expected"), [("dedicated", 60), ("batch", 1)])
def test_a_batch_has_its_own_interactive_timeout(mode: str, expected: int) -> None:
    assert timers.interactive_ttl(SETTINGS, mode) == expected


@pytest.mark.parametrize(
    ("requested", "capped", "fixed"),
    [
        pytest.param(None, None, 100, id="nothing_asked_fixes_the_system_limit"),
        pytest.param(30, 30, 30, id="below_the_limit_kept"),
        pytest.param(100, 100, 100, id="at_the_limit_kept"),
        pytest.param(500, 100, 100, id="above_the_limit_capped"),
    ],
)
def test_the_max_ttl_is_capped_at_the_system_limit(
    requested: int | None, capped: int | None, fixed: int
) -> None:
    assert timers.capped_max_ttl(SETTINGS, requested) == capped
    assert timers.max_ttl(SETTINGS, requested) == fixed


def test_the_open_deadline_is_creation_plus_the_open_timeout() -> None:
    assert timers.open_deadline(make_settings(open_timeout=1800), 7) == 1807

"""The selectors' state: a leader driven through a few minutes of traffic on sim_a."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from scheduler import models, selectors
from tests.factories import two_hubs
from tests.selectors.driver import Driver


@pytest.fixture
def driver(settings: Any) -> Driver:
    settings.QDASH_EAGER_LEADER = False
    return Driver()


@pytest.fixture
def backend() -> models.Backend:
    return two_hubs()


@pytest.fixture
def traffic(backend: models.Backend, driver: Driver) -> datetime:
    """Four jobs over two minutes on sim_a, from the start of a minute ten minutes ago.

    qj1 runs 0:05-1:05; qj2 waits behind it and starts at 1:05; qj3 opens a
    session at 1:10 (its first job comes through fair share) and qj4, sent
    into that session while qj3 runs, waits in the session lane until 1:30.
    """
    base = selectors.flow_bin(timezone.now()) - timedelta(minutes=10)
    driver.submit("qj1", inst="hubA/g/p", at=base + timedelta(seconds=5), seconds=60)
    driver.submit("qj2", inst="hubB/g/p", at=base + timedelta(seconds=6))
    driver.submit(
        "qj3",
        inst="hubB/g/p",
        at=base + timedelta(seconds=70),
        seconds=20,
        session="qs1",
        start_session=True,
    )
    driver.submit("qj4", inst="hubB/g/p", at=base + timedelta(seconds=71), session="qs1")
    driver.run_until(base + timedelta(seconds=200))
    return base

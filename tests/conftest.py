"""Shared test setup. Fixtures that build state use factories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import channel_layers
from django.test import override_settings

REDIS_URL = os.environ.get("QDASH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LAYERS = {
    "memory": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    "redis": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}},
}


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Rate-limit counts live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def eager_leader(settings: Any) -> None:
    """No scheduler process runs in tests: a change is applied by a leader step in the
    test's own thread (`QDASH_EAGER_LEADER`). Tests of the live loop turn it off."""
    settings.QDASH_EAGER_LEADER = True


@pytest.fixture(params=["memory", "redis"])
def channel_layer_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on the in-memory channel layer and on Redis."""
    kind = request.param
    if kind == "redis" and not _redis_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    with override_settings(CHANNEL_LAYERS={"default": LAYERS[kind]}):
        channel_layers.backends.clear()
        yield kind
    channel_layers.backends.clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres` need what only PostgreSQL has (the executor queue,
    advisory locks, LISTEN): the PostgreSQL run of the suite has them; another
    database's run leaves them out (deselected, not skipped)."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    keep = [item for item in items if item.get_closest_marker("postgres") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep

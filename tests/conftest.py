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
    """Rate-limit counts live in the cache: each test starts with none, with no
    remembered bearer tokens and no remembered input checks."""
    from django.core.cache import cache

    from scheduler import limits
    from scheduler.api.callers import forget

    cache.clear()
    forget()  # and the bearers a web process remembers (scheduler/api/callers.py)
    limits.answers.cache_clear()  # and the answers of its input checks (scheduler/limits.py)
    yield
    cache.clear()
    forget()
    limits.answers.cache_clear()


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


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The test database, dropped only once nothing else is connected to it.

    On PostgreSQL, `DROP DATABASE` fails while another session is on the database. A
    subprocess a test started may still be exiting, or a thread may still hold a
    connection it took from the pool. Such sessions get a few seconds to leave; any
    left are ended, and named on stderr, so the drop succeeds.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        _end_other_sessions(connection)


def _end_other_sessions(connection: Any, wait: float = 10.0) -> None:
    import sys
    import time

    import psycopg

    name = connection.settings_dict["NAME"]
    connection.close()
    connection.close_pool()
    db = connection.settings_dict
    params = {
        "host": db["HOST"],
        "port": db["PORT"],
        "user": db["USER"],
        "password": db["PASSWORD"],
    }
    params = {key: value for key, value in params.items() if value}
    query = (
        "SELECT pid, application_name, state, left(query, 80) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()"
    )
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        deadline = time.monotonic() + wait
        while (rows := admin.execute(query, [name]).fetchall()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid, application, state, text in rows:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            print(
                f"teardown: a session was still on {name} and was ended: "
                f"{application!r} {state} {text!r}",
                file=sys.__stderr__,
            )

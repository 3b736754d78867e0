"""The API tests' callers and backend, for the in-process fuzz run."""

from tests.api.conftest import alice, backend, bob  # noqa: F401

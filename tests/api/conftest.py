"""Fixtures for the REST API: a member user with an API key, a backend, a client."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from scheduler import circuits, models
from scheduler.api.auth import instance_crn
from scheduler.auth_tokens import tokens_issue
from tests.factories import BackendFactory, UserFactory, instance

BASE = "/api/v1"


@dataclass
class Caller:
    """A user with an API key, calling the API with the Django test client."""

    user: Any
    key: str
    crn: str
    client: Client

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "Service-CRN": self.crn, **extra}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(BASE + path, params, headers=self.headers())

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        data = json.dumps(body) if body is not None else ""
        return self.client.post(
            BASE + path, data, content_type="application/json", headers=self.headers(**headers)
        )

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(
            BASE + path, json.dumps(body), content_type="application/json", headers=self.headers()
        )

    def put(self, path: str, body: Any) -> Any:
        return self.client.put(
            BASE + path, json.dumps(body), content_type="application/json", headers=self.headers()
        )

    def delete(self, path: str) -> Any:
        return self.client.delete(BASE + path, headers=self.headers())


def make_caller(username: str, path: str) -> Caller:
    user = UserFactory(username=username)
    node = instance(path)
    node.members.add(user)
    _, key = tokens_issue(user=user)
    return Caller(user, key, instance_crn(path), Client())


@pytest.fixture
def backend() -> models.Backend:
    return BackendFactory(name="sim_a", num_qubits=5, job_overhead=timedelta(seconds=1))


@pytest.fixture
def alice() -> Caller:
    return make_caller("alice", "hub/group/alice")


@pytest.fixture
def bob() -> Caller:
    return make_caller("bob", "hub/group/bob")


@functools.cache
def _bell_params(shots: int) -> str:
    # QPY output differs between calls (random circuit names): encode once per shot count.
    return json.dumps(
        circuits.sampler_params([circuits.parse_qasm(circuits.EXAMPLES["bell"])], shots)
    )


def bell_params(shots: int = 100) -> dict[str, Any]:
    return json.loads(_bell_params(shots))


def job_body(backend: str = "sim_a", **extra: Any) -> dict[str, Any]:
    return {"program_id": "sampler", "backend": backend, "params": bell_params(), **extra}


def pause(backend: models.Backend) -> None:
    """Pause `backend`, so jobs submitted to it stay queued."""
    models.Backend.objects.filter(pk=backend.pk).update(status=models.Backend.Status.PAUSED)

"""Researchers' traffic through the REST API: plain jobs, sessions opened both ways and
closed or left to expire, the reservation window's instance, cancels."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from tests.acceptance.chaos.config import ChaosConfig, ChaosResult


class Client:
    """Researchers through the REST API, retrying what the cluster answers with a 5xx or
    does not answer (a restarting web process), as the real client does."""

    def __init__(self, base: str, keys: dict[str, str], result: ChaosResult) -> None:
        import requests

        self.base = base
        self.keys = keys
        self.result = result
        self.local = threading.local()
        self.lock = threading.Lock()
        self.accepted: list[str] = []  # job ids answered 201
        self.owner: dict[str, str] = {}  # job id -> the instance that submitted it
        self.requests = requests

    def _session(self) -> Any:
        if getattr(self.local, "http", None) is None:
            self.local.http = self.requests.Session()
        return self.local.http

    def call(self, method: str, path: str, instance: str, body: Any = None, key: str = "") -> Any:
        """The answer to a request, retried for up to two minutes; None if never answered.

        A `key` goes as the `Idempotency-Key` header, so a retried submission whose
        first answer was lost is not accepted twice."""
        headers = {"Authorization": f"Bearer {self.keys[instance]}"}
        if key:
            headers["Idempotency-Key"] = key
        deadline = time.monotonic() + 120
        delay = 0.2
        while True:
            try:
                answer = self._session().request(
                    method, self.base + path, json=body, headers=headers, timeout=30
                )
                kind = f"{answer.status_code // 100}xx"
                self._count(f"{kind} {answer.status_code}")
                if answer.status_code < 500 and answer.status_code != 429:
                    return answer
            except self.requests.RequestException as error:
                self._count(f"no answer ({type(error).__name__})")
                self.local.http = None
            if time.monotonic() > deadline:
                return None
            time.sleep(delay + random.random() * delay)
            delay = min(delay * 2, 2.0)

    def _count(self, what: str) -> None:
        with self.lock:
            self.result.requests[what] += 1

    def submit(self, instance: str, backend: str, tag: str, **extra: Any) -> str | None:
        body = {
            "program_id": "sampler",
            "backend": backend,
            "params": BELL,
            "tags": [tag],
            **extra,
        }
        answer = self.call("POST", "/api/v1/jobs", instance, body, key=tag)
        if answer is None:
            with self.lock:
                self.result.dropped += 1
            return None
        if answer.status_code in (200, 201):
            uid = str(answer.json()["id"])
            with self.lock:
                self.accepted.append(uid)
                self.owner[uid] = instance
            return uid
        return None  # refused by the rules (e.g. its session expired): not accepted


BELL: dict[str, Any] = {}  # the sampler params of a Bell circuit, filled in by run()


def submit_jobs(
    config: ChaosConfig, client: Client, backends: list[str], stop: threading.Event
) -> None:
    """Submit `config.jobs` jobs over `config.duration` seconds from several threads."""
    rng = random.Random(config.seed)
    instances = [path for path in client.keys if path != "hubR/g/p"]
    gap = config.duration / config.jobs * config.submitters
    counter = iter(range(10**9))
    counter_lock = threading.Lock()
    budget = [config.jobs]

    def take(n: int = 1) -> list[int]:
        with counter_lock:
            n = min(n, budget[0])
            budget[0] -= n
            return [next(counter) for _ in range(n)]

    def stream(seed: int) -> None:
        local = random.Random(seed)
        while not stop.is_set():
            tickets = take()
            if not tickets:
                return
            (n,) = tickets
            started = time.monotonic()
            roll = local.random()
            if roll < config.session_share:
                _session_stream(client, local, instances, backends, n, take)
            elif roll < config.session_share + config.cancel_share and client.accepted:
                with client.lock:
                    victim = local.choice(client.accepted[-200:])
                client.call("POST", f"/api/v1/jobs/{victim}/cancel", client.owner[victim])
                with counter_lock:
                    budget[0] += 1  # a cancel is not one of the jobs
            elif roll < config.session_share + config.cancel_share + 0.04:
                backend = backends[0]  # the reserved backend, by its reservation's instance
                client.submit("hubR/g/p", backend, f"chaos-{n}")
            else:
                client.submit(local.choice(instances), local.choice(backends), f"chaos-{n}")
            time.sleep(max(0.0, local.expovariate(1 / gap) - (time.monotonic() - started)))

    threads = [
        threading.Thread(target=stream, args=(rng.random(),), daemon=True)
        for _ in range(config.submitters)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def trickle(client: Client, backends: list[str], faults: threading.Thread) -> None:
    """A job a second while faults are still being injected after the traffic ended, so
    every fault meets a cluster with work to decide."""
    instances = [path for path in client.keys if path != "hubR/g/p"]
    n = 0
    while faults.is_alive():
        client.submit(instances[n % len(instances)], backends[n % len(backends)], f"trickle-{n}")
        n += 1
        faults.join(1.0)


def _session_stream(
    client: Client,
    rng: random.Random,
    instances: list[str],
    backends: list[str],
    first: int,
    take: Any,
) -> None:
    """A session opened either way, a few jobs into it, then closed (or left to expire)."""
    instance, backend = rng.choice(instances), rng.choice(backends)
    tickets = [first, *take(rng.randint(2, 6))]
    if rng.random() < 0.5:
        answer = client.call("POST", "/api/v1/sessions", instance, {"backend": backend})
        if answer is None or answer.status_code != 200:
            return
        session = answer.json()["id"]
        uid = client.submit(instance, backend, f"chaos-{tickets[0]}", session_id=session)
    else:
        uid = client.submit(instance, backend, f"chaos-{tickets[0]}", start_session=True)
        if uid is None:
            return
        job = client.call("GET", f"/api/v1/jobs/{uid}", instance)
        session = job.json().get("session_id") if job is not None else None
        if not session:
            return
    for n in tickets[1:]:
        time.sleep(rng.uniform(0.1, 2.0))
        client.submit(instance, backend, f"chaos-{n}", session_id=session)
    if rng.random() < 0.8:
        client.call("DELETE", f"/api/v1/sessions/{session}/close", instance)

"""Random valid scenarios (the scenario format of docs/simulate.md) for differential tests.

One builder, `_build`, draws every choice through a small `_Source`, so the same
code backs the hypothesis strategy `scenarios()` (which shrinks well, because
each choice is its own draw) and the seeded `random_scenario(rng, ...)`.

Settings are small (timers of seconds, not hours) and events crowd 0..150 s, so
interactive timeouts, max TTLs, open timeouts, runtime limits and usage-window
expiry all fire within a scenario, and many events share an instant. Allocations
are small too (tens of seconds, periods of tens of seconds), so nodes run out,
free again as charges leave the window or a period begins, and refuse.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

BACKENDS = ["sim_a", "sim_b", "sim_c"]
INSTANCES = ["hubA/g1/p1", "hubA/g1/p2", "hubA/g2/p", "hubB/g/p", "hubB/g2/p"]
OUTSIDER = "hubC/x/p"  # named only by a wrong-instance submit or a reservation
HORIZON = 150


class _Source:
    """The primitive choices the builder needs."""

    def __init__(
        self,
        integer: Callable[[int, int], int],
        boolean: Callable[[float], bool],
    ) -> None:
        self.integer = integer
        self.chance = boolean

    def pick(self, items: Sequence[T]) -> T:
        return items[self.integer(0, len(items) - 1)]

    def weighted(self, table: Sequence[tuple[int, T]]) -> T:
        roll = self.integer(1, sum(w for w, _ in table))
        for weight, item in table:
            roll -= weight
            if roll <= 0:
                return item
        raise AssertionError("unreachable")

    def time(self) -> int | float:
        """An instant in 0..HORIZON, sometimes a half-integer."""
        whole = self.integer(0, HORIZON)
        return whole + 0.5 if whole < HORIZON and self.chance(0.15) else whole


def _settings(src: _Source) -> dict[str, int]:
    ranges = {
        "interactive_ttl": (0, 30),
        "open_timeout": (5, 60),
        "system_max_ttl": (20, 200),
        "usage_window": (50, 1000),
        "backend_max_runtime": (10, 100),
    }
    settings = {}
    for key, (low, high) in ranges.items():
        if not src.chance(0.05):  # now and then fall back to the default
            settings[key] = src.integer(low, high)
    return settings


def _reservations(src: _Source, backends: list[str], instances: list[str]) -> list[dict]:
    reservations: list[dict[str, Any]] = []
    for backend in backends:
        cursor = src.integer(0, 40)
        for _ in range(src.weighted([(4, 0), (4, 1), (2, 2)])):
            start = cursor + src.integer(0, 30)
            end = start + src.integer(1, 60)
            reservations.append(
                {
                    "id": f"r{len(reservations) + 1}",
                    "backend": backend,
                    "instance": src.pick(instances + [OUTSIDER]),
                    "start": start,
                    "end": end,
                    "exclusive": src.chance(0.4),
                }
            )
            cursor = end + (0 if src.chance(0.3) else src.integer(1, 20))
    return reservations


ENFORCE = ["queue", "safe", "refuse"]


def _allocation(src: _Source, node: str) -> dict[str, Any]:
    seconds: float = src.integer(0, 60)
    if src.chance(0.1):
        seconds += 0.5
    body: dict[str, Any] = {"instance": node, "seconds": seconds}
    if src.chance(0.8):
        body["enforce"] = src.pick(ENFORCE)
    if src.chance(0.4):
        body["period"] = {"start": src.integer(-20, 80), "length": src.integer(5, 80)}
    elif src.chance(0.1):
        body["period"] = None
    return body


def _allocations(src: _Source, nodes: list[str]) -> list[dict[str, Any]]:
    chosen = [node for node in nodes if src.chance(0.3)]
    return [_allocation(src, node) for node in chosen]


class _EventMaker:
    """Draws events one by one, remembering names so later events can refer to them."""

    def __init__(
        self, src: _Source, backends: list[str], instances: list[str], nodes: list[str]
    ) -> None:
        self.src = src
        self.backends = backends
        self.instances = instances
        self.nodes = nodes
        self.jobs: list[str] = []
        self.sessions: dict[str, tuple[str, str]] = {}  # name -> backend, instance

    def make(self) -> dict[str, Any]:
        kinds: list[tuple[int, str]] = [
            (5, "submit"),
            (2, "start_session"),
            (2, "create_session"),
            (5 if self.sessions else 0, "join"),
            (2 if self.jobs else 0, "cancel_job"),
            (1, "close_session"),
            (1, "cancel_session"),
            (1, "backend_status"),
            (1 if self.nodes else 0, "put_allocation"),
        ]
        kind = self.src.weighted([(w, k) for w, k in kinds if w])
        return getattr(self, f"_{kind}")()

    def _job(self, backend: str, instance: str) -> dict[str, Any]:
        src = self.src
        name = f"j{len(self.jobs) + 1}"
        self.jobs.append(name)
        duration = 0 if src.chance(0.12) else src.integer(1, 40)
        body: dict[str, Any] = {
            "job": name,
            "instance": instance,
            "backend": backend,
            "duration": duration + 0.5 if src.chance(0.1) else duration,
        }
        if src.chance(0.3):
            body["max_execution_time"] = src.integer(0, 40)
        return body

    def _new_session_name(self) -> str:
        return f"s{len(self.sessions) + 1}"

    def _submit(self) -> dict[str, Any]:
        src = self.src
        backend = "sim_z" if src.chance(0.04) else src.pick(self.backends)
        return {"submit": self._job(backend, src.pick(self.instances))}

    def _start_session(self) -> dict[str, Any]:
        src = self.src
        backend = "sim_z" if src.chance(0.04) else src.pick(self.backends)
        instance = src.pick(self.instances)
        body = self._job(backend, instance)
        name = self._new_session_name()
        self.sessions[name] = (backend, instance)
        body.update(start_session=True, session=name)
        return {"submit": body}

    def _create_session(self) -> dict[str, Any]:
        src = self.src
        name = self._new_session_name()
        backend, instance = src.pick(self.backends), src.pick(self.instances)
        self.sessions[name] = (backend, instance)
        body: dict[str, Any] = {"session": name, "instance": instance, "backend": backend}
        if src.chance(0.5):
            body["max_ttl"] = src.integer(0, 100)
        return {"create_session": body}

    def _join(self) -> dict[str, Any]:
        src = self.src
        name = src.pick(sorted(self.sessions))
        backend, instance = self.sessions[name]
        mistake = src.weighted([(20, None), (1, "session"), (1, "backend"), (1, "instance")])
        if mistake == "session":
            name = "s_unknown"
        elif mistake == "backend":
            backend = src.pick([b for b in BACKENDS + ["sim_z"] if b != backend])
        elif mistake == "instance":
            instance = src.pick([i for i in INSTANCES + [OUTSIDER] if i != instance])
        body = self._job(backend, instance)
        body["session"] = name
        return {"submit": body}

    def _cancel_job(self) -> dict[str, Any]:
        return {"cancel_job": "j_unknown" if self.src.chance(0.05) else self.src.pick(self.jobs)}

    def _session_target(self) -> str:
        if not self.sessions or self.src.chance(0.1):
            return "s_unknown"
        return self.src.pick(sorted(self.sessions))

    def _close_session(self) -> dict[str, Any]:
        return {"close_session": self._session_target()}

    def _cancel_session(self) -> dict[str, Any]:
        return {"cancel_session": self._session_target()}

    def _put_allocation(self) -> dict[str, Any]:
        node = self.src.pick(self.nodes)
        if self.src.chance(0.25):
            return {"put_allocation": {"instance": node, "seconds": None}}
        return {"put_allocation": _allocation(self.src, node)}

    def _backend_status(self) -> dict[str, Any]:
        status = "paused" if self.src.chance(0.5) else "online"
        return {"backend_status": {"backend": self.src.pick(self.backends), "status": status}}


def _build(src: _Source, n_events: int, allocations: bool | None = None) -> dict[str, Any]:
    n_backends = src.integer(1, 3)
    backend_names = BACKENDS[:n_backends]
    backends: list[dict[str, Any]] = []
    for name in backend_names:
        backend: dict[str, Any] = {"name": name}
        if src.chance(0.15):
            backend["status"] = "paused"
        backends.append(backend)
    if src.chance(0.3):
        backends.reverse()  # file order is not name order
    pool = list(INSTANCES)
    instances = [pool.pop(src.integer(0, len(pool) - 1)) for _ in range(src.integer(1, 4))]

    scenario: dict[str, Any] = {"settings": _settings(src), "backends": backends}
    nodes = sorted({"/".join(i.split("/")[:d]) for i in instances for d in (1, 2, 3)})
    shares = {n: src.pick([1, 2, 3, 4, 0.5]) for n in nodes if src.chance(0.35)}
    if shares:
        scenario["shares"] = shares
    if src.chance(0.3):
        scenario["usage"] = {i: src.integer(1, 120) for i in instances if src.chance(0.6)}
    reservations = _reservations(src, backend_names, instances)
    if reservations:
        scenario["reservations"] = reservations
    # half the scenarios know no allocations at all, unless the caller says
    limited = src.chance(0.5) if allocations is None else allocations
    if limited:
        initial = _allocations(src, nodes)
        if initial:
            scenario["allocations"] = initial

    maker = _EventMaker(src, backend_names, instances, nodes if limited else [])
    times = sorted(src.time() for _ in range(n_events))
    events = [{"at": at, **maker.make()} for at in times]
    if src.chance(0.15):
        # file order need not be time order; same-instant events keep file order
        events = [events[i] for i in _permutation(src, len(events))]
    scenario["events"] = events
    return scenario


def _permutation(src: _Source, n: int) -> list[int]:
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = src.integer(0, i)
        order[i], order[j] = order[j], order[i]
    return order


def random_scenario(
    rng: random.Random, n_events: int | None = None, allocations: bool | None = None
) -> dict[str, Any]:
    """A valid scenario dict drawn from `rng`; `n_events` defaults to 30..80.

    `allocations`: always, never, or None (the default) for half of the scenarios.
    """
    src = _Source(rng.randint, lambda p: rng.random() < p)
    if n_events is None:
        n_events = rng.randint(30, 80)
    return _build(src, n_events, allocations)


@st.composite
def scenarios(
    draw: st.DrawFn, min_events: int = 0, max_events: int = 25, allocations: bool | None = None
) -> dict[str, Any]:
    """Hypothesis strategy for valid scenario dicts (`allocations`: always, never, or
    in half of them)."""
    src = _Source(
        lambda low, high: draw(st.integers(low, high)),
        # shrinks towards "no": the unusual branch is the one that needs a reason
        lambda p: draw(st.integers(0, 99)) >= 100 - round(p * 100),
    )
    return _build(src, draw(st.integers(min_events, max_events)), allocations)

"""This deployment's input limits and its decoding sandbox, from the settings.

Decoding is shared fairly: each caller (a user) has at most one decode in flight
in a web process, so one user's slow submissions take at most one of the
sandbox's workers and never hold another user's. A caller's further decodes wait
for their turn, up to `QDASH_DECODE_QUEUE_PER_USER` of them; more are refused
(`DecodeBusy`, a 429).

What a pure check answered is remembered by what it was asked (`Answers`): the
same input checked again against the same limits and device (a client sending one
circuit many times, or the same refusal twice) costs a hash, not a turn and a
round trip to the sandbox. Only answers are kept, never a cap that was hit: that
depends on the machine's load. Each caller's answers are their own.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from cachetools import LRUCache
from django.conf import settings

from scheduler import circuits
from scheduler.sandbox import Failed, LimitExceeded, Sandbox

log = logging.getLogger(__name__)


class DecodeBusy(Exception):
    """The caller already has as many decodes running or waiting as it may."""

    def __init__(self, waiting: int) -> None:
        super().__init__(
            f"You have {waiting} submissions being checked already; "
            "wait for them before sending more."
        )
        self.message = str(self)


def input_limits() -> circuits.Limits:
    """`settings.QDASH_LIMITS` as the circuits module's `Limits`."""
    return circuits.Limits(**{name.lower(): value for name, value in settings.QDASH_LIMITS.items()})


@functools.cache
def sandbox() -> Sandbox:
    conf = settings.QDASH_DECODE
    return Sandbox(
        workers=conf["WORKERS"],
        memory_mb=conf["MEMORY_MB"],
        seconds=conf["SECONDS"],
        # What the workers run: the form's OpenQASM, a job's PUBs, a quantum program, and
        # the devices' ISA checks.
        preload=(
            "scheduler.circuits.qasm",
            "scheduler.circuits.pubs",
            "scheduler.quantum_programs",
            "scheduler.devices.checks",
        ),
    )


class FairTurns:
    """One turn at a time per caller; a caller's extra requests wait in line, up to a bound."""

    def __init__(self, queue_per_caller: int) -> None:
        self.queue_per_caller = queue_per_caller
        self._changed = threading.Condition()
        self._in_flight: set[str] = set()
        self._queued: dict[str, int] = {}  # waiting or in flight, per caller

    @contextlib.contextmanager
    def turn(self, caller: str) -> Iterator[None]:
        """Wait until `caller` has nothing else in flight; raise `DecodeBusy` when it
        already has `queue_per_caller` requests running or waiting."""
        with self._changed:
            queued = self._queued.get(caller, 0)
            if queued >= self.queue_per_caller:
                raise DecodeBusy(queued)
            self._queued[caller] = queued + 1
            while caller in self._in_flight:
                self._changed.wait()
            self._in_flight.add(caller)
        try:
            yield
        finally:
            with self._changed:
                self._in_flight.discard(caller)
                left = self._queued[caller] - 1
                if left:
                    self._queued[caller] = left
                else:
                    del self._queued[caller]
                self._changed.notify_all()


@functools.cache
def decode_turns() -> FairTurns:
    return FairTurns(settings.QDASH_DECODE["QUEUE_PER_USER"])


class Capped(circuits.CircuitError):
    """A decode hit the sandbox's time or memory cap: a refusal that the machine's load
    had a say in, so it is not remembered."""


class Answers:
    """A pure decoder's answers (a value, or the `CircuitError` refusing the input) by
    a digest of its arguments, least recently used first out. An answer weighs one
    plus its circuits (`runs`), so a few large jobs cannot fill the memory."""

    def __init__(self, weight: int) -> None:
        self._lock = threading.Lock()
        self._answers: LRUCache[str, tuple[bool, Any]] = LRUCache(weight, getsizeof=_weight)

    @staticmethod
    def key(
        caller: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> str | None:
        """The digest of a caller's call; None when an argument has no stable text (not
        kept). Each caller has answers of their own: how fast an answer comes must not
        tell one user that another sent the same input."""
        try:
            text = json.dumps(
                [caller, func.__module__, func.__qualname__, args, kwargs],
                sort_keys=True,
                separators=(",", ":"),
                default=_dataclass_text,
            )
        except (TypeError, ValueError):
            return None
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> tuple[bool, Any] | None:
        with self._lock:
            return self._answers.get(key)

    def put(self, key: str, answer: tuple[bool, Any]) -> None:
        with self._lock, contextlib.suppress(ValueError):  # heavier than the whole memo
            self._answers[key] = answer


def _weight(answer: tuple[bool, Any]) -> int:
    return 1 + len(getattr(answer[1], "runs", ()))


def _dataclass_text(value: Any) -> str:
    """A frozen dataclass's repr names every field: stable text for a digest."""
    if (
        getattr(value, "__dataclass_params__", None) is not None
        and value.__dataclass_params__.frozen
    ):
        return repr(value)
    raise TypeError(type(value).__name__)


@functools.cache
def answers() -> Answers:
    return Answers(settings.QDASH_DECODE["MEMO_WEIGHT"])


def decode(func: Any, *args: Any, caller: str, memo: bool = False, **kwargs: Any) -> Any:
    """`func(*args, **kwargs)` in the sandbox, in `caller`'s turn; a cap that is hit, or
    a decoder that breaks on the input, is a `CircuitError`. With `memo` (`func` is pure
    and its arguments say everything it reads), an answer given before is given again
    without a turn or the sandbox."""
    key = Answers.key(caller, func, args, kwargs) if memo and answers_on() else None
    if key is not None:
        known = answers().get(key)
        if known is not None:
            ok, value = known
            if ok:
                return value
            raise circuits.CircuitError(value)
    try:
        value = _decode(func, *args, caller=caller, **kwargs)
    except circuits.CircuitError as error:
        if key is not None and not isinstance(error, Capped):
            answers().put(key, (False, str(error)))
        raise
    if key is not None:
        answers().put(key, (True, value))
    return value


def answers_on() -> bool:
    return bool(settings.QDASH_DECODE["MEMO_WEIGHT"])


def _decode(func: Any, *args: Any, caller: str, **kwargs: Any) -> Any:
    with decode_turns().turn(caller):
        try:
            return sandbox().run(func, *args, **kwargs)
        except LimitExceeded as error:
            raise Capped(error.message) from None
        except Failed as error:  # e.g. a panic in native parsing code: the input is refused
            log.warning("decoding failed on its input: %s", error)
            raise circuits.CircuitError(f"the input could not be decoded: {error}") from None

"""Decoding in capped worker processes: memory, time, errors, and a pool that recovers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from scheduler.circuits import CircuitError
from scheduler.sandbox import Failed, LimitExceeded, Sandbox


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 2**20))


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def refuse(line: int) -> None:
    raise CircuitError("bad input", line, field="observables")


def panic() -> None:
    class Unpicklable(Exception):  # a local class cannot be pickled
        pass

    raise Unpicklable("deep inside")


def pid() -> int:
    return os.getpid()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(workers=1, memory_mb=200, seconds=3)
    yield box
    box.close()


def test_it_runs_the_function_in_another_process(sandbox: Sandbox) -> None:
    assert sandbox.run(pid) != os.getpid()
    assert sandbox.run(allocate, megabytes=50) == 50 * 2**20


def test_it_refuses_what_needs_more_memory_than_the_cap(sandbox: Sandbox) -> None:
    with pytest.raises(LimitExceeded, match="more than 200 MB"):
        sandbox.run(allocate, 1000)
    assert sandbox.run(allocate, 10) == 10 * 2**20  # the worker is still usable


def test_it_kills_what_runs_too_long_and_recovers(sandbox: Sandbox) -> None:
    before = sandbox.run(pid)
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="longer than 3 s"):
        sandbox.run(sleep, 60)
    assert time.monotonic() - started < 30
    assert sandbox.run(sleep, 0) == 0
    assert sandbox.run(pid) != before  # the worker was replaced


def test_errors_cross_the_process_boundary_whole(sandbox: Sandbox) -> None:
    with pytest.raises(CircuitError) as caught:
        sandbox.run(refuse, 7)
    assert (caught.value.message, caught.value.line, caught.value.field) == (
        "bad input",
        7,
        "observables",
    )
    with pytest.raises(Failed, match="Unpicklable: deep inside"):
        sandbox.run(panic)


def niceness() -> int:
    return os.nice(0)


def test_a_call_may_have_a_shorter_time_cap_of_its_own(sandbox: Sandbox) -> None:
    with pytest.raises(LimitExceeded, match="longer than 0.5 s"):
        sandbox.outcome(sandbox.schedule(sleep, (30,), seconds=0.5))
    assert sandbox.outcome(sandbox.schedule(sleep, (0,), seconds=100)) == 0  # the pool's cap


def test_workers_can_run_at_a_lower_priority() -> None:
    box = Sandbox(workers=1, memory_mb=200, seconds=3, nice=7)
    try:
        assert box.run(niceness) == os.nice(0) + 7
    finally:
        box.close()


def sigterm_disposition() -> object:
    import signal

    return signal.getsignal(signal.SIGTERM)


def test_a_worker_dies_at_once_on_sigterm_even_inside_native_code(sandbox: Sandbox) -> None:
    # pebble's own handler would wait for the interpreter, which Aer's loops never give back.
    import signal

    assert sandbox.run(sigterm_disposition) == signal.SIG_DFL

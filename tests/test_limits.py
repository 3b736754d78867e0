"""Decoding untrusted input in the sandbox: whatever goes wrong is a `CircuitError`."""

from __future__ import annotations

import threading
import time

import pytest

from scheduler import circuits, limits
from tests.slow_circuits import panicking_decode


def test_a_decoder_that_panics_refuses_the_input() -> None:
    with pytest.raises(circuits.CircuitError, match="could not be decoded: Panic: native code"):
        limits.decode(panicking_decode, "x", caller="user:1")


def test_the_qasm2_lexer_panic_is_refused_with_its_reason() -> None:
    text = "OPENQASM 2.0;\nqreg q[99999999999999999999\n"
    with pytest.raises(circuits.CircuitError, match="an integer in the program is too large"):
        limits.decode(circuits.parse_qasm, text, caller="user:1")


def _holding(turns: limits.FairTurns, caller: str, release: threading.Event) -> threading.Thread:
    """A thread that takes `caller`'s turn and keeps it until `release` is set."""

    def hold() -> None:
        with turns.turn(caller):
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def _wait_for(predicate: object) -> None:
    deadline = time.monotonic() + 10
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_one_callers_decode_in_flight_does_not_hold_another_callers() -> None:
    turns = limits.FairTurns(queue_per_caller=4)
    release = threading.Event()
    holder = _holding(turns, "user:1", release)
    _wait_for(lambda: "user:1" in turns._in_flight)
    release_second = threading.Event()
    second = _holding(turns, "user:1", release_second)  # waits behind the first
    _wait_for(lambda: turns._queued.get("user:1") == 2)
    with turns.turn("user:2"):  # another caller goes at once
        assert turns._queued == {"user:1": 2, "user:2": 1}
        assert turns._in_flight == {"user:1", "user:2"}
    release.set()
    holder.join(10)
    # The second takes its turn when the first ends.
    _wait_for(lambda: turns._queued.get("user:1") == 1 and "user:1" in turns._in_flight)
    assert turns._in_flight == {"user:1"}
    release_second.set()
    second.join(10)
    assert turns._queued == {}


def test_a_caller_with_a_full_line_is_refused() -> None:
    turns = limits.FairTurns(queue_per_caller=1)
    release = threading.Event()
    holder = _holding(turns, "user:1", release)
    _wait_for(lambda: "user:1" in turns._in_flight)
    with (
        pytest.raises(limits.DecodeBusy, match="You have 1 submissions being checked"),
        turns.turn("user:1"),
    ):
        pass
    with turns.turn("user:2"):
        pass
    release.set()
    holder.join(10)
    with turns.turn("user:1"):  # its turn came back
        pass
    assert turns._queued == {}

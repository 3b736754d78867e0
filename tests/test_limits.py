"""Decoding untrusted input in the sandbox: whatever goes wrong is a `CircuitError`."""

from __future__ import annotations

import pytest

from scheduler import circuits, limits
from tests.slow_circuits import panicking_decode


def test_a_decoder_that_panics_refuses_the_input() -> None:
    with pytest.raises(circuits.CircuitError, match="could not be decoded: Panic: native code"):
        limits.decode(panicking_decode, "x")


def test_the_qasm2_lexer_panic_is_refused_with_its_reason() -> None:
    text = "OPENQASM 2.0;\nqreg q[99999999999999999999\n"
    with pytest.raises(circuits.CircuitError, match="an integer in the program is too large"):
        limits.decode(circuits.parse_qasm, text)

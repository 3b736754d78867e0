"""Bad circuit input, as the form and the API show it."""

from __future__ import annotations

import re
from typing import Any


class CircuitError(ValueError):
    """Bad circuit input; `line` is the 1-based line of OpenQASM text, when known.

    `field` names the input it concerns (the submission form shows it there).
    """

    def __init__(self, message: str, line: int | None = None, field: str = "circuit") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the sandbox's process boundary whole
        return (type(self), (self.message, self.line, self.field))


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Native decoders append a backtrace drawn with box characters: the message ends there.
_BACKTRACE = re.compile(r"(\s|\\n)*[╺━┅].*$", re.DOTALL)


def one_line(error: BaseException) -> str:
    """An error as one line of at most 300 characters, for users and logs."""
    text = _ANSI.sub("", str(error))
    if _BACKTRACE.search(text):
        text = _BACKTRACE.sub("", text).strip("\"' :")
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."

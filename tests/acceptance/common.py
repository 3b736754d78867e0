"""What the acceptance harnesses share: local ports, and the Bell circuit they submit."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from typing import Any


def free_port(preferred: Iterable[int] = ()) -> int:
    """A free local TCP port: the first of `preferred` that is free, else any."""
    for port in preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float = 60.0) -> bool:
    """Whether something listens on the local `port` within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def bell_params() -> dict[str, Any]:
    """A sampler job's params: a two-qubit Bell circuit, 100 shots."""
    from scheduler import circuits

    return circuits.sampler_params([circuits.ghz(2)], 100)

"""`python -m qdash.web --host H --port P [daphne options]`: a web process of a cluster
with a listening socket of its own.

Each web process of `make cluster` opens its own socket on the shared port with
`SO_REUSEPORT` and hands it to daphne (`--fd`). The kernel then spreads new
connections evenly between the processes' sockets, by a hash of each connection's
addresses. With one socket shared by all (supervisord's fcgi-program), whichever
process wakes first takes the connection, and one process could end up with two
thirds of the dashboards' websockets. A process that is down has no socket, so
new connections go to the others until it is back.
"""

from __future__ import annotations

import argparse
import socket
import sys

from daphne.cli import CommandLineInterface

BACKLOG = 1024


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (an IPv4 address) that other processes may
    share."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # daphne adopts IPv4 sockets
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m qdash.web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args, daphne_args = parser.parse_known_args(argv)
    sock = listen(args.host, args.port)
    CommandLineInterface().run(["--fd", str(sock.fileno()), *daphne_args, "qdash.asgi:application"])


if __name__ == "__main__":
    main(sys.argv[1:])

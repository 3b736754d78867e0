"""`python -m qdash.web`: each web process's own listening socket on the shared port."""

from __future__ import annotations

import select
import socket

from qdash.web import listen


def test_processes_share_the_port_and_the_kernel_spreads_connections() -> None:
    first = listen("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = listen("127.0.0.1", port)  # a second process's socket: no EADDRINUSE
    clients = []
    try:
        for _ in range(64):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        accepted = {id(first): 0, id(second): 0}
        while sum(accepted.values()) < len(clients):
            ready, _, _ = select.select([first, second], [], [], 5)
            assert ready, "a connection was not accepted"
            for sock in ready:
                conn, _ = sock.accept()
                conn.close()
                accepted[id(sock)] += 1
        # By a hash of each connection's addresses: 64 never all land on one socket.
        assert min(accepted.values()) > 0
    finally:
        for sock in [*clients, first, second]:
            sock.close()

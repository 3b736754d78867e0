"""Fan-out: this process's one member of the dashboard group hands each change to
every dashboard socket of the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from scheduler import live

log = logging.getLogger(__name__)


class Socket(Protocol):
    """A dashboard socket, as the hub sees it."""

    def deliver(self, event: dict[str, Any]) -> None: ...


class Hub:
    """This process's one member of the dashboard group: it receives each change once
    from the channel layer and hands it to every dashboard socket of the process.

    With every socket in the group, Redis would hold a copy of each change per
    socket and the process would fetch them one by one. The hub joins again every
    `REJOIN_SECONDS` (membership is lost when Redis restarts, and expires), and again
    after any error of the layer.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.sockets: set[Socket] = set()
        self.channel = ""
        self.joined = asyncio.Event()
        self.task = asyncio.ensure_future(self._run())

    async def join(self, socket: Socket) -> None:
        self.sockets.add(socket)
        with contextlib.suppress(TimeoutError):  # a layer that is away: the page still works
            await asyncio.wait_for(self.joined.wait(), JOIN_WAIT)

    def leave(self, socket: Socket) -> None:
        self.sockets.discard(socket)

    async def _run(self) -> None:
        delay = 0.5
        while True:
            rejoin = None
            try:
                self.channel = await self.layer.new_channel("dashboard-hub.")
                await self.layer.group_add(live.GROUP, self.channel)
                self.joined.set()
                rejoin = asyncio.ensure_future(self._rejoin())
                delay = 0.5
                while True:
                    event = await self.layer.receive(self.channel)
                    for socket in list(self.sockets):
                        socket.deliver(event)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the layer is away: join again soon
                log.warning("live updates: the channel layer failed (%s); joining again", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if rejoin is not None:
                    rejoin.cancel()

    async def _rejoin(self) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                await self.layer.group_add(live.GROUP, self.channel)
            except Exception as error:  # noqa: BLE001 - the receive loop sees it too
                log.warning("live updates: could not join the group again: %s", error)


REJOIN_SECONDS = 5.0
JOIN_WAIT = 5.0  # seconds a connecting socket waits for its hub to join the group
_hubs: dict[tuple[int, asyncio.AbstractEventLoop], Hub] = {}


def hub_of(layer: Any) -> Hub | None:
    """The hub of this event loop and layer (tests run several loops, one at a time);
    None without a channel layer (no live updates)."""
    if layer is None:
        return None
    loop = asyncio.get_running_loop()
    key = (id(layer), loop)
    hub = _hubs.get(key)
    if hub is None or hub.task.done():
        for old in [k for k, h in _hubs.items() if k[1].is_closed() or h.task.done()]:
            del _hubs[old]
        hub = _hubs[key] = Hub(layer)
    return hub

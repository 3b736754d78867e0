"""Websocket consumers. Thin: they render fragments from the database and send them."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from scheduler import fragments, live, metrics, selectors
from scheduler.leader import LeaderLock
from scheduler.runner import Scheduler, scheduler_loop

log = logging.getLogger(__name__)
PAGES = ("dashboard", "job", "session", "fair_share")


class DashboardConsumer(AsyncWebsocketConsumer):
    """One websocket per page: HTML fragments for htmx (swapped by id), JSON for Plotly.

    On connect (and so on every reconnect) it sends the page's fragments in
    full, so a page that missed messages catches up.
    """

    open_count: ClassVar[int] = 0  # websockets open in this process (the cluster page)
    # No channel of its own: the process's hub receives each change once and hands it
    # to every socket (a layer alias that names no layer leaves the socket without one).
    channel_layer_alias = "dashboard-sockets-use-the-hub"

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        params = parse_qs(self.scope.get("query_string", b"").decode())
        page = params.get("page", ["dashboard"])[0]
        self.page = page if page in PAGES else "dashboard"
        self.uid = params.get("uid", [""])[0]
        self.filters = {key: params.get(key, [""])[0] for key in selectors.JOB_FILTERS}
        hub = _hub(get_channel_layer())
        if hub is not None:
            await hub.join(self)
        await self.accept()
        self.counted = True
        metrics.WEBSOCKETS.inc()
        DashboardConsumer.open_count += 1
        await self._send_all(await self._render(None))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # also when the server cancels the socket's task without a disconnect
            self._uncount()

    def _uncount(self) -> None:
        if getattr(self, "counted", False):
            metrics.WEBSOCKETS.dec()
            DashboardConsumer.open_count -= 1
            self.counted = False

    async def disconnect(self, code: int) -> None:
        self._uncount()
        hub = _hub(get_channel_layer())
        if hub is not None:
            hub.leave(self)

    def deliver(self, event: dict[str, Any]) -> None:
        """A change from this process's hub: handled after the ones before it, in order."""
        previous = getattr(self, "_delivered", None)
        # In a context of its own, not the hub's (which began in another socket's connect).
        self._delivered = asyncio.get_running_loop().create_task(
            self._deliver_after(previous, event), context=contextvars.Context()
        )

    async def _deliver_after(self, previous: asyncio.Future[None] | None, event: Any) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        try:
            await self.dashboard_changed(event)
        except Exception as error:  # noqa: BLE001 - a socket that closed meanwhile
            log.debug("a live update was not delivered: %s", error)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The job table's filter form (htmx `ws-send`): re-render the table for it."""
        try:
            data = json.loads(text_data or "{}")
        except ValueError:
            return
        if self.page != "dashboard" or not isinstance(data, dict):
            return
        self.filters = {key: str(data.get(key, "")).strip() for key in selectors.JOB_FILTERS}
        await self._send_all(await self._render({"backends": [], "jobs": ["*"], "sessions": []}))

    async def dashboard_changed(self, event: dict[str, Any]) -> None:
        """A scheduler step committed: re-render what it touched."""
        await self._send_all(await self._render(event))

    async def _send_all(self, messages: list[str]) -> None:
        for message in messages:
            await self.send(text_data=message)

    async def _render(self, change: dict[str, Any] | None) -> list[str]:
        return await render_shared(
            page=self.page, uid=self.uid, user=self.user, filters=self.filters, change=change
        )


class _Hub:
    """This process's one member of the dashboard group: it receives each change once
    from the channel layer and hands it to every dashboard socket of the process.

    With every socket in the group, Redis would hold a copy of each change per
    socket and the process would fetch them one by one. The hub joins again every
    `REJOIN_SECONDS` (membership is lost when Redis restarts, and expires), and again
    after any error of the layer.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.sockets: set[DashboardConsumer] = set()
        self.channel = ""
        self.joined = asyncio.Event()
        self.task = asyncio.ensure_future(self._run())

    async def join(self, socket: DashboardConsumer) -> None:
        self.sockets.add(socket)
        with contextlib.suppress(TimeoutError):  # a layer that is away: the page still works
            await asyncio.wait_for(self.joined.wait(), JOIN_WAIT)

    def leave(self, socket: DashboardConsumer) -> None:
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
_hubs: dict[tuple[int, asyncio.AbstractEventLoop], _Hub] = {}


def _hub(layer: Any) -> _Hub | None:
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
        hub = _hubs[key] = _Hub(layer)
    return hub


# Fragments rendered for one change, shared by every page that shows the same thing:
# with many viewers a change is rendered once per (page, viewer, filters), not per
# socket. The cache lives on the event loop's side, so the sockets that wait for a
# render already under way do not queue for the (single) database thread at all.
_rendered: OrderedDict[tuple[Any, ...], asyncio.Future[list[str]]] = OrderedDict()
RENDER_CACHE_SIZE = 512


async def render_shared(
    *, page: str, uid: str, user: Any, filters: dict[str, str], change: dict[str, Any] | None
) -> list[str]:
    """`render_page`, reusing what another socket rendered (or is rendering) for the change."""
    render = database_sync_to_async(render_page)
    # Staff see the same pages; a session page also depends on who owns the session.
    viewer = "staff" if user.is_staff and page != "session" else user.pk
    if change is None:  # a (re)connect
        page_key: tuple[Any, ...] = (page, uid, viewer, tuple(sorted(filters.items())))
        return await _render_connect(page_key, page=page, uid=uid, user=user, filters=filters)
    if "id" not in change:  # a filter change: render afresh
        return await render(page=page, uid=uid, user=user, filters=filters, change=change)
    key = (change["id"], page, uid, viewer, tuple(sorted(filters.items())))
    shared = _rendered.get(key)
    if shared is None or shared.get_loop() is not asyncio.get_running_loop():
        # A task of its own: a socket closing mid-render does not cancel it for the others.
        shared = asyncio.ensure_future(
            render(page=page, uid=uid, user=user, filters=filters, change=change)
        )
        shared.add_done_callback(partial(_forget_failed, key))
        _rendered[key] = shared
        if len(_rendered) > RENDER_CACHE_SIZE:
            _rendered.popitem(last=False)
    return await asyncio.shield(shared)


@dataclass
class _Connect:
    render: asyncio.Future[list[str]]
    reading: threading.Event  # set by the database thread when the render begins to read


# Whole pages for sockets that connect: a socket shares a render that has not begun to
# read the database yet (so it reads everything committed before the socket joined the
# group, and the socket hears of every later change). When many connect at once (a
# restart, a storm of reconnects) the renders queue for the database thread, and each
# one queued serves every socket that joins before it starts, not one.
_connecting: dict[tuple[Any, ...], _Connect] = {}


async def _render_connect(
    key: tuple[Any, ...], *, page: str, uid: str, user: Any, filters: dict[str, str]
) -> list[str]:
    entry = _connecting.get(key)
    loop = asyncio.get_running_loop()
    if entry is None or entry.reading.is_set() or entry.render.get_loop() is not loop:
        reading = threading.Event()

        def read() -> list[str]:
            reading.set()
            return render_page(page=page, uid=uid, user=user, filters=filters, change=None)

        entry = _Connect(asyncio.ensure_future(database_sync_to_async(read)()), reading)
        _connecting[key] = entry
        entry.render.add_done_callback(partial(_forget_connect, key, entry))
    return await asyncio.shield(entry.render)


def _forget_connect(key: tuple[Any, ...], entry: _Connect, _: object) -> None:
    if _connecting.get(key) is entry:
        del _connecting[key]


def _forget_failed(key: tuple[Any, ...], render: asyncio.Future[list[str]]) -> None:
    """A failed render is not kept: the next socket for the same change tries again."""
    failed = render.cancelled() or render.exception() is not None
    if failed and _rendered.get(key) is render:
        del _rendered[key]


def render_page(
    *, page: str, uid: str, user: Any, filters: dict[str, str], change: dict[str, Any] | None
) -> list[str]:
    """The messages a page needs after `change` (None: everything, as on connect)."""
    if page == "dashboard":
        if change is None:
            html = fragments.dashboard_fragments(
                user=user, filters=filters, backends=None, jobs=True
            )
            cards = selectors.backend_cards()
            return [*_one(html), fragments.to_json(fragments.charts(cards=cards, user=user))]
        messages = _one(
            fragments.dashboard_fragments(
                user=user, filters=filters, backends=change["backends"], jobs=bool(change["jobs"])
            )
        )
        if change["backends"]:
            messages.append(fragments.depth_points(backends=change["backends"], at=change["at"]))
        if change["sessions"]:
            messages.append(fragments.timeline_message(user=user))
        return messages
    if page == "job":
        # A queued job's place moves with every new plan; its status with its own changes.
        if change is None or uid in change["jobs"]:
            status = fragments.job_fragment(uid=uid, user=user)
        elif change.get("plan"):
            status = fragments.job_fragment(uid=uid, user=user, queued=True)
        else:
            status = None
        return [status] if status else []
    if page == "session":
        if change is None or uid in change["sessions"]:
            return fragments.session_fragments(uid=uid, user=user)
        return []
    if change is None or change["jobs"] or change.get("plan"):
        return [fragments.fair_share_fragment(user=user)]
    return []


def _one(html: list[str]) -> list[str]:
    """HTML fragments as one message: htmx swaps each of its elements by id, and one
    frame per socket costs a server with many sockets far less than several."""
    return ["\n".join(html)] if html else []


class SchedulerConsumer(AsyncConsumer):
    """The scheduler as a channel worker: `manage.py runworker scheduler-wake`.

    The first wake-up starts the scheduler loop in the worker (leader or
    standby, see `scheduler.leader`); every later one makes it tick at once.
    Between wake-ups the loop still ticks at every due timer.
    """

    loop: ClassVar[asyncio.Task[None] | None] = None
    wakeup: ClassVar[asyncio.Event | None] = None

    async def scheduler_wake(self, message: dict[str, Any]) -> None:
        cls = type(self)
        if cls.loop is None or cls.loop.done():
            cls.wakeup = asyncio.Event()
            cls.loop = asyncio.ensure_future(
                scheduler_loop(Scheduler(), lock=LeaderLock(), wakeup=cls.wakeup)
            )
        assert cls.wakeup is not None
        cls.wakeup.set()

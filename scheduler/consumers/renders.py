"""Renders shared between sockets: a change, or a connect, is rendered once per
(page, viewer, filters), not once per socket."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any

from channels.db import database_sync_to_async

from scheduler.consumers.pages import render_page

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

"""The dashboard websocket: one per page, HTML fragments for htmx and JSON for Plotly."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from scheduler import metrics, selectors
from scheduler.consumers.hub import hub_of
from scheduler.consumers.renders import render_shared

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
        hub = hub_of(get_channel_layer())
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
        hub = hub_of(get_channel_layer())
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

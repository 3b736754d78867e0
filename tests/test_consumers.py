"""The live dashboard websocket: fragments on connect, and after every scheduler step."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from qdash.routing import websocket_urlpatterns
from scheduler import live, models, plans
from scheduler.engine import eager
from scheduler.engine.step import Leader
from scheduler.policy import model as m
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backend() -> models.Backend:
    instance("hubA/g/p")
    return BackendFactory(name="sim_a")


def run(test: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(test)()


async def connect(path: str, user: object) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive_until(
    communicator: WebsocketCommunicator, match: Callable[[str], bool], seconds: float = 5
) -> list[str]:
    """Every message up to and including the first that matches."""
    seen: list[str] = []
    async with asyncio.timeout(seconds):
        while True:
            message = await communicator.receive_from(seconds)
            seen.append(message)
            if match(message):
                return seen


def submit(job: str, **extra: object) -> None:
    action = m.Submit(job=job, instance="hubA/g/p", backend="sim_a", duration=2_000_000, **extra)  # type: ignore[arg-type]
    eager.step([action], at=timezone.now())


def test_a_leader_tells_the_dashboards_of_its_steps_unless_told_otherwise() -> None:
    assert Leader().on_commit is live.notify
    assert plans.Planner().on_publish is live.plan_published


def test_anonymous_users_are_refused() -> None:
    async def main() -> None:
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live")
        communicator.scope["user"] = AnonymousUser()
        connected, _ = await communicator.connect()
        assert not connected

    run(main)


def test_it_sends_cards_table_and_charts_on_connect(
    backend: models.Backend, channel_layer_kind: str
) -> None:
    user = UserFactory(username="op", is_staff=True)

    async def main() -> None:
        communicator = await connect("/ws/live?page=dashboard", user)
        seen = await receive_until(communicator, lambda t: t.startswith("{"))
        assert any('id="backend-sim_a"' in t for t in seen)
        assert any('<div id="job-table">' in t for t in seen)
        charts = json.loads(seen[-1])
        assert charts["type"] == "charts" and "sim_a" in charts["flow"]
        await communicator.disconnect()

    run(main)


def test_a_job_state_change_reaches_a_connected_client(
    backend: models.Backend, channel_layer_kind: str
) -> None:
    user = UserFactory(username="op", is_staff=True)

    async def main() -> None:
        communicator = await connect("/ws/live?page=dashboard", user)
        await receive_until(communicator, lambda t: t.startswith("{"))
        await database_sync_to_async(submit)("qlive1")  # submitted and started in one step
        seen = await receive_until(communicator, lambda t: '"type": "depth"' in t)
        card = next(t for t in seen if 'id="backend-sim_a"' in t)
        assert "qlive1"[:9] in card and "fair-share" in card
        table = next(t for t in seen if 'id="job-table"' in t)
        assert 'id="job-qlive1"' in table and "Running" in table
        points = json.loads(seen[-1])["points"]["sim_a"]
        assert points["fair_share"] == 0 and "at" in points
        await communicator.disconnect()

    run(main)


def test_the_job_table_follows_the_filters_the_client_sends(
    backend: models.Backend, channel_layer_kind: str
) -> None:
    user = UserFactory(username="op", is_staff=True)
    submit("qone")

    async def main() -> None:
        communicator = await connect("/ws/live?page=dashboard", user)
        await receive_until(communicator, lambda t: t.startswith("{"))
        await communicator.send_to(text_data=json.dumps({"status": "Completed", "HEADERS": {}}))
        table = (await receive_until(communicator, lambda t: 'id="job-table"' in t))[-1]
        assert "qone" not in table and "No jobs match." in table
        await communicator.disconnect()

    run(main)


def test_a_job_page_gets_its_status_when_the_job_starts(
    backend: models.Backend, channel_layer_kind: str
) -> None:
    user = UserFactory(username="op", is_staff=True)
    now = timezone.now()
    eager.step(
        [m.Submit(job="qfirst", instance="hubA/g/p", backend="sim_a", duration=60_000_000)], at=now
    )
    eager.step(
        [m.Submit(job="qsecond", instance="hubA/g/p", backend="sim_a", duration=1_000_000)],
        at=now + timedelta(seconds=1),
    )

    async def main() -> None:
        communicator = await connect("/ws/live?page=job&uid=qsecond", user)
        first = await communicator.receive_from(5)
        assert 'id="job-status"' in first and "Queued" in first and "Queue position" in first
        await database_sync_to_async(eager.step)([m.CancelJob("qfirst")], at=timezone.now())
        seen = await receive_until(communicator, lambda t: "Running" in t)
        assert 'id="job-status"' in seen[-1]
        await communicator.disconnect()

    run(main)


class BrokenLayer:
    async def group_send(self, group: str, message: dict) -> None:
        raise OSError("redis is down")


def test_a_failing_channel_layer_never_fails_the_step(
    backend: models.Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "get_channel_layer", BrokenLayer)
    submit("qquiet")
    assert models.Job.objects.get(uid="qquiet").status == m.RUNNING


def test_changes_name_jobs_sessions_and_backends() -> None:
    session = m.Session(
        id="qs", backend="sim_a", instance="h/g/p", created_at=0, seq=1, interactive_ttl=60
    )
    job = m.Job(id="qj", instance="h/g/p", backend="sim_b", submitted_at=0, seq=1, session=session)
    events = [
        m.Event(5, "job_started", job, {}),
        m.Event(7, "hold_started", m.Backend(name="sim_c"), {}),
    ]
    assert live.changes(events) == {
        "jobs": ["qj"],
        "sessions": ["qs"],
        "backends": ["sim_b", "sim_c"],
        "at": 7,
    }


def test_a_change_is_rendered_once_for_every_staff_viewer_with_the_same_filters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from scheduler.consumers import renders

    calls: list[str] = []

    def render_page(**kwargs: Any) -> list[str]:
        calls.append(kwargs["page"])
        return [f"<div>{len(calls)}</div>"]

    monkeypatch.setattr(renders, "render_page", render_page)
    change = {"id": "c1", "backends": ["sim_a"], "jobs": ["j1"], "sessions": [], "at": ""}
    staff = [SimpleNamespace(is_staff=True, pk=n) for n in (1, 2, 3)]
    researcher = SimpleNamespace(is_staff=False, pk=9)

    async def viewers() -> list[list[str]]:
        def render(user: Any, **filters: str) -> Awaitable[list[str]]:
            return renders.render_shared(
                page="dashboard", uid="", user=user, filters=filters, change=change
            )

        # All at once, as the sockets of one server receive the change: the later
        # ones wait for the render the first one started.
        return await asyncio.gather(
            *(render(u) for u in staff), render(researcher), render(staff[0], backend="sim_a")
        )

    *shared, own, filtered = async_to_sync(viewers)()

    assert shared == [["<div>1</div>"]] * 3
    assert own == ["<div>2</div>"] and filtered == ["<div>3</div>"]
    assert len(calls) == 3


def test_a_failed_render_reaches_its_waiters_and_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from scheduler.consumers import renders

    calls: list[int] = []

    def render_page(**kwargs: Any) -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return ["<div>ok</div>"]

    monkeypatch.setattr(renders, "render_page", render_page)
    change = {"id": "c2", "backends": [], "jobs": ["j1"], "sessions": [], "at": ""}
    admin = SimpleNamespace(is_staff=True, pk=1)

    def render() -> Awaitable[list[str]]:
        return renders.render_shared(
            page="dashboard", uid="", user=admin, filters={}, change=change
        )

    async def twice() -> tuple[list[Any], list[str]]:
        first = await asyncio.gather(render(), render(), return_exceptions=True)
        return first, await render()

    first, again = async_to_sync(twice)()

    assert [type(outcome) for outcome in first] == [RuntimeError, RuntimeError]
    assert again == ["<div>ok</div>"] and len(calls) == 2


def test_sockets_that_connect_together_share_a_render_that_has_not_begun_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    from types import SimpleNamespace

    from scheduler.consumers import renders

    calls: list[int] = []
    release = threading.Event()

    def render_page(**kwargs: Any) -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            release.wait(5)  # the first render holds the database thread while others join
        return [f"<div>{len(calls)}</div>"]

    monkeypatch.setattr(renders, "render_page", render_page)
    staff = [SimpleNamespace(is_staff=True, pk=n) for n in range(1, 7)]

    def connect_render(user: Any) -> Awaitable[list[str]]:
        return renders.render_shared(page="dashboard", uid="", user=user, filters={}, change=None)

    async def storm() -> list[list[str]]:
        first = asyncio.ensure_future(connect_render(staff[0]))
        while not calls:  # the first render is reading: no later socket may share it
            await asyncio.sleep(0.01)
        later = [asyncio.ensure_future(connect_render(user)) for user in staff[1:]]
        await asyncio.sleep(0.1)
        release.set()
        return [await first, *await asyncio.gather(*later)]

    pages = async_to_sync(storm)()

    assert pages[0] == ["<div>1</div>"]
    assert pages[1:] == [["<div>2</div>"]] * 5  # one render for the five that joined later
    assert len(calls) == 2


def test_the_open_count_drops_when_a_socket_ends_without_a_disconnect(backend: Any) -> None:
    from scheduler.consumers.dashboard import DashboardConsumer

    operator = UserFactory(is_staff=True)

    async def scenario() -> tuple[int, int]:
        before = DashboardConsumer.open_count
        communicator = await connect("/ws/live", operator)
        await receive_until(communicator, lambda text: text.startswith('{"type": "charts"'))
        during = DashboardConsumer.open_count - before
        communicator.future.cancel()  # as daphne does to an instance that will not stop
        with pytest.raises(asyncio.CancelledError):
            await communicator.future
        return during, DashboardConsumer.open_count - before

    during, after = async_to_sync(scenario)()
    assert (during, after) == (1, 0)


def test_the_sockets_of_a_process_share_one_member_of_the_group(
    backend: models.Backend, channel_layer_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three dashboards, one group member (the process's hub): each change crosses the
    layer once and reaches all three. When the layer forgets the member (a Redis
    restart), the hub joins again and changes flow again."""
    from channels.layers import get_channel_layer

    from scheduler.consumers import hub as fan_out

    monkeypatch.setattr(fan_out, "REJOIN_SECONDS", 0.2)
    user = UserFactory(username="op", is_staff=True)
    layer = get_channel_layer()

    async def members() -> int:
        """Members of the group from this process (Redis may hold other runs' too)."""
        if channel_layer_kind == "memory":
            return len(layer.groups.get(live.GROUP, {}))
        async with layer.connection(layer.consistent_hash(live.GROUP)) as connection:
            names = await connection.zrange(layer._group_key(live.GROUP), 0, -1)
        return sum(layer.client_prefix in name.decode() for name in names)

    async def shown(socket: WebsocketCommunicator, uid: str) -> bool:
        """Whether the socket is told of job `uid` (other tests' changes may come first:
        on Redis, every test process's dashboards share the group)."""
        try:
            await receive_until(socket, lambda t: uid in t)
        except TimeoutError:
            return False
        return True

    async def main() -> tuple[int, list[bool], list[bool]]:
        sockets = [await connect("/ws/live?page=dashboard", user) for _ in range(3)]
        for socket in sockets:
            await receive_until(socket, lambda t: t.startswith("{"))
        joined = await members()
        await database_sync_to_async(submit)("qhub1")
        first = [await shown(s, "qhub1") for s in sockets]
        hub = fan_out.hub_of(layer)
        assert hub is not None
        await layer.group_discard(live.GROUP, hub.channel)  # the layer forgot it
        rejoined = await members()
        async with asyncio.timeout(10):  # the hub joins again (every 0.2 s here)
            while rejoined != 1:
                await asyncio.sleep(0.05)
                rejoined = await members()
        await database_sync_to_async(submit)("qhub2")
        again = [await shown(s, "qhub2") for s in sockets]
        for socket in sockets:
            await socket.disconnect()
        return joined, first, again

    joined, first, again = async_to_sync(main)()
    assert joined == 1
    assert first == [True] * 3 and again == [True] * 3

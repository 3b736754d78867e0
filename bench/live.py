"""`python -m bench --live`: the live dashboard under load. Measures, never asserts.

1. Update latency: `manage.py serve --no-scheduler` and a `manage.py scheduler`
   leader on a scratch SQLite database with the demo data and a Redis channel
   layer (a scratch `redis-server`), N websocket clients on /ws/live in this
   process (asyncio), and job submissions from another process (`bench.live_child
   changes`): for every (change, client) pair, the time from the submission's
   commit (by the web side) to the client receiving the message that names the
   new job, the leader's step included.
2. Page time: the dashboard, its job-table partial and the fair-share page,
   rendered server-side (Django test client) over 100k finished jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import ROOT, percentile
from .simulate import db_engines

LATENCY_TARGET_MS = 250.0  # p95, commit to the client's message
DASHBOARD_TARGET_MS = 300.0  # server time of GET /
CONNECT_TIMEOUT = 300.0  # s, all clients connected and their first fragments received
CHANGE_TIMEOUT = 60.0  # s, every client received one change


def _child(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.live_child", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ----------------------------------------------------------- update latency
@dataclass
class LatencyResult:
    clients: int
    changes: int
    connect_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    missing: int = 0  # (change, client) pairs not received within CHANGE_TIMEOUT
    ready: int = 0  # clients that had their first fragments when the changes started
    failed_connects: int = 0  # connections closed before the first fragments (retried)
    drops: int = 0  # connections closed later (reconnected)
    initial_messages: list[int] = field(default_factory=list)  # per client
    initial_bytes: list[int] = field(default_factory=list)
    change_messages: list[int] = field(default_factory=list)
    change_bytes: list[int] = field(default_factory=list)
    per_change_min_ms: list[float] = field(default_factory=list)  # the first client
    per_change_max_ms: list[float] = field(default_factory=list)  # the last client
    layer: str = ""
    note: str = ""
    web_processes: int = 1
    per_process: list[int] = field(default_factory=list)  # websockets each web process served


class _Client:
    """One dashboard websocket: counts what it receives, stamps the jobs it waits for.

    Like the page's htmx websocket, it reconnects after a close, with an
    exponential backoff (full jitter).
    """

    def __init__(self, watch: _Watch) -> None:
        self.watch = watch
        self.ready = asyncio.Event()
        self.messages = [0, 0]  # before / after ready
        self.bytes = [0, 0]
        self.failed_connects = 0  # closed before the first fragments arrived
        self.drops = 0  # closed after
        self.last_error = ""

    async def run(self, url: str, cookie: str) -> None:
        from websockets.asyncio.client import connect

        attempt = 0
        while True:
            try:
                async with connect(
                    url,
                    additional_headers={"Cookie": cookie},
                    max_size=None,
                    compression=None,
                    ping_interval=None,
                    open_timeout=CONNECT_TIMEOUT,
                ) as ws:
                    async for message in ws:
                        self._received(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - counted, then reconnect
                self.last_error = f"{type(error).__name__}: {error}"
            if self.ready.is_set():
                self.drops += 1
            else:
                self.failed_connects += 1
            attempt += 1
            await asyncio.sleep(random.uniform(0, min(10.0, 0.5 * 2**attempt)))

    def _received(self, message: str | bytes) -> None:
        at = time.time()
        text = message if isinstance(message, str) else message.decode()
        phase = 1 if self.ready.is_set() else 0
        self.messages[phase] += 1
        self.bytes[phase] += len(text.encode())
        if phase == 0 and text.startswith('{"type": "charts"'):
            self.ready.set()  # the last of the page's fragments on connect
        self.watch.seen(self, text, at)


class _Watch:
    """The job uid clients are waiting for and when each received it."""

    def __init__(self) -> None:
        self.uid = ""
        self.received: dict[_Client, float] = {}
        self.total = 0
        self.done = asyncio.Event()

    def expect(self, uid: str, total: int) -> None:
        self.uid, self.received, self.total = uid, {}, total
        self.done = asyncio.Event()

    def seen(self, client: _Client, text: str, at: float) -> None:
        if self.uid and client not in self.received and self.uid in text:
            self.received[client] = at
            if len(self.received) == self.total:
                self.done.set()


async def _drive(
    url: str,
    cookie: str,
    n_clients: int,
    n_changes: int,
    gap: float,
    env: dict[str, str],
    census: Any = None,
) -> LatencyResult:
    """`census()`, when given, is called once every client is ready: the websockets
    each web process reports."""
    result = LatencyResult(n_clients, n_changes)
    watch = _Watch()
    clients = [_Client(watch) for _ in range(n_clients)]
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(c.run(url, cookie)) for c in clients]
    changer = await asyncio.create_subprocess_exec(
        *_child("changes"),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert changer.stdin is not None and changer.stdout is not None
    try:
        ready = asyncio.gather(*(c.ready.wait() for c in clients))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready, CONNECT_TIMEOUT)
        result.connect_s = time.perf_counter() - start
        await asyncio.sleep(1.0)  # let anything still in flight settle
        if census is not None:
            await asyncio.sleep(2.0)  # a heartbeat of every web process
            result.per_process = await asyncio.to_thread(census)
        for c in clients:
            c.messages[1] = c.bytes[1] = 0
        result.ready = sum(c.ready.is_set() for c in clients)
        n_clients = result.ready
        for _ in range(n_changes):
            changer.stdin.write(b"go\n")
            await changer.stdin.drain()
            answer = json.loads(await changer.stdout.readline())
            watch.expect(answer["uid"], n_clients)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.done.wait(), CHANGE_TIMEOUT)
            received = [(at - answer["committed"]) * 1000 for at in watch.received.values()]
            result.latencies_ms += received
            result.missing += n_clients - len(received)
            if received:
                result.per_change_min_ms.append(min(received))
                result.per_change_max_ms.append(max(received))
            await asyncio.sleep(gap)
        await asyncio.sleep(1.0)  # trailing messages of the last change
    finally:
        changer.stdin.close()
        await changer.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.failed_connects = sum(c.failed_connects for c in clients)
    result.drops = sum(c.drops for c in clients)
    errors = [c.last_error for c in clients if c.last_error]
    if errors:
        result.note = f"{len(errors)} clients saw a close or error, e.g. {errors[0]}"
    result.initial_messages = [c.messages[0] for c in clients]
    result.initial_bytes = [c.bytes[0] for c in clients]
    result.change_messages = [c.messages[1] for c in clients]
    result.change_bytes = [c.bytes[1] for c in clients]
    return result


def measure_latency(n_clients: int, n_changes: int, gap: float, workdir: Path) -> LatencyResult:
    """Server, Redis and the changer as subprocesses; the clients here."""
    try:
        import websockets  # noqa: F401
    except ImportError:
        return LatencyResult(n_clients, n_changes, note="needs `pip install websockets`")
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        return LatencyResult(
            n_clients,
            n_changes,
            note="needs redis-server: with the in-memory channel layer a change committed "
            "by another process never reaches the server's consumers",
        )
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    redis_port = _free_port()
    db = workdir / "live.sqlite3"
    db.unlink(missing_ok=True)  # a kept --workdir: start from the demo data again
    env = {
        **base,
        "DATABASE_URL": f"sqlite:///{db}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DEBUG": "false",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        redis = subprocess.Popen(
            [redis_server, "--bind", "127.0.0.1", "--port", str(redis_port)]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(redis)
        _wait_port(redis_port, redis, "redis-server")
        setup_path = workdir / "live-setup.json"
        subprocess.run(_child("setup", "--result", str(setup_path)), cwd=ROOT, env=env, check=True)
        sessionid = json.loads(setup_path.read_text())["sessionid"]
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--no-scheduler", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "serve.log").open("wb"),
        )
        processes.append(server)
        leader = subprocess.Popen(  # applies the submissions and tells the dashboards
            [sys.executable, "manage.py", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "scheduler.log").open("wb"),
        )
        processes.append(leader)
        _wait_port(port, server, "serve")
        url = f"ws://127.0.0.1:{port}/ws/live"
        result = asyncio.run(_drive(url, f"sessionid={sessionid}", n_clients, n_changes, gap, env))
        result.layer = "channels_redis (scratch redis-server)"
        return result
    finally:
        for process in reversed(processes):
            _stop(process)


def measure_fanout(
    n_clients: int, n_changes: int, gap: float, workdir: Path, pg_server: str
) -> LatencyResult:
    """The same measure across the cluster's web processes: `deploy/supervisord.conf`
    (two daphne processes on one socket, a scheduler, an executor) on a scratch
    PostgreSQL database and a scratch Redis, the clients spread by the kernel."""
    try:
        import websockets  # noqa: F401
    except ImportError:
        return LatencyResult(n_clients, n_changes, note="needs `pip install websockets`")
    from tests.acceptance.chaos.cluster import Cluster
    from tests.acceptance.chaos.config import ChaosConfig

    config = ChaosConfig(
        database=f"qdash_fanout_{os.getpid()}", schedulers=1, executors=1, browser=False
    )
    cluster = Cluster(config, workdir / "fanout", pg_server)
    cluster.env["QDASH_PROCESS_HEARTBEAT"] = "1"
    cluster.create_database()
    cluster.start_redis()
    try:
        setup_path = workdir / "fanout-setup.json"
        subprocess.run(
            _child("setup", "--result", str(setup_path)), cwd=ROOT, env=cluster.env, check=True
        )
        sessionid = json.loads(setup_path.read_text())["sessionid"]
        cluster.start()
        url = f"ws://127.0.0.1:{cluster.port}/ws/live"

        def census() -> list[int]:
            rows = cluster.sql(
                "SELECT detail FROM scheduler_process WHERE kind = 'web' "
                "AND heartbeat_at > now() - interval '5 seconds' ORDER BY name"
            )
            return [int(detail.get("websockets", 0)) for (detail,) in rows]

        cookie = f"sessionid={sessionid}"
        result = asyncio.run(
            _drive(url, cookie, n_clients, n_changes, gap, cluster.env, census=census)
        )
        result.layer = "channels_redis (scratch redis-server)"
        result.web_processes = int(cluster.env["QDASH_WEB_PROCESSES"])
        return result
    finally:
        cluster.stop()
        with contextlib.suppress(Exception):
            cluster.drop_database()


# ---------------------------------------------------------------- page time
@dataclass
class PageRun:
    engine: str
    result: dict[str, Any]
    wall: float
    note: str = ""


def measure_pages(n_jobs: int, reps: int, seed: int, workdir: Path) -> list[PageRun]:
    """One child per database kind: fill, then time (and cProfile, untimed) each page."""
    runs = []
    for engine, env in db_engines():
        env = {**env, "DEBUG": "false", "REDIS_URL": ""}
        if engine == "db/sqlite":
            db = workdir / "pages.sqlite3"
            db.unlink(missing_ok=True)
            env["DATABASE_URL"] = f"sqlite:///{db}"
        result_path = workdir / f"pages-{engine.replace('/', '-')}.json"
        args = ["pages", "--jobs", str(n_jobs), "--reps", str(reps), "--seed", str(seed)]
        args += ["--result", str(result_path), "--profile"]
        start = time.perf_counter()
        code = subprocess.run(_child(*args), cwd=ROOT, env=env).returncode
        wall = time.perf_counter() - start
        if code != 0 or not result_path.exists():
            runs.append(PageRun(engine, {}, wall, f"child exited with {code}"))
            continue
        runs.append(PageRun(engine, json.loads(result_path.read_text()), wall))
    return runs


def slow_queries(page: dict[str, Any], limit: int = 8) -> list[tuple[float, float, int, str]]:
    """The page's slowest queries of one request: (replay ms, execute ms, rows, SQL).

    Replay: the captured SQL run again with all rows fetched (the captured time
    stops before the rows are fetched); the execute time when it cannot replay.
    """
    rows = []
    for sql, execute_ms, replay_ms, count in page["queries"]:
        total = execute_ms if replay_ms is None else replay_ms
        rows.append((total, execute_ms, -1 if count is None else count, sql))
    return sorted(rows, reverse=True)[:limit]


def summary(values: list[float]) -> tuple[float, float, float]:
    return percentile(values, 50), percentile(values, 95), max(values)

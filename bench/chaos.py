"""`python -m bench --chaos`: the cluster under faults. Measures, never asserts.

It runs the cluster of `make cluster` (supervisord: two web processes on one
port, a scheduler leader and a standby, executor workers) on a scratch
PostgreSQL database and a scratch redis-server, and researchers' traffic through
the REST API: plain jobs on every backend, sessions created both ways (POST
/sessions, and a job's `start_session`) and then closed or left to expire, a
reservation window, and cancels. Meanwhile it injects faults at random points:
`kill -9` of the scheduler leader, `kill -9` of an executor in the middle of a
job, a Redis restart, `pg_terminate_backend` on the schedulers' and web
processes' connections, and web process restarts while a browser (Debian's
chromium) watches the dashboard. When the queue has drained it counts what must
be zero (jobs lost, started twice, executed twice at once, results written
twice), the failover times, what the submitters saw, the browser's reconnects,
and replays the event log with the memory engine (`manage.py replay --check`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from .core import ROOT, percentile

FAILOVER_TARGET_S = 5.0  # p95, kill to the next decision
FINAL = ("Completed", "Failed", "Cancelled")
APP_NAMES = ("qdash-scheduler", "qdash-scheduler-lock", "qdash-scheduler-listen", "qdash-web")


@dataclass
class ChaosConfig:
    jobs: int = 10_000
    duration: float = 480.0  # seconds over which the submissions are spread
    backends: int = 8
    job_seconds: float = 0.1  # modeled QPU time of a job (overhead)
    leader_kills: int = 100
    executor_kills: int = 5
    redis_restarts: int = 2
    pg_terminations: int = 5
    web_restarts: int = 2
    browser: bool = True
    schedulers: int = 2
    executors: int = 2
    concurrency: int = 2
    submitters: int = 8  # client threads
    session_share: float = 0.05  # of submissions that open a session stream
    cancel_share: float = 0.03
    drain_timeout: float = 900.0
    seed: int = 0
    database: str = "qdash_chaos"


@dataclass
class ChaosResult:
    config: ChaosConfig
    wall_s: float = 0.0
    accepted: int = 0  # jobs the API answered 201 for
    final: Counter[str] = field(default_factory=Counter)  # accepted jobs by final status
    errors: Counter[str] = field(default_factory=Counter)  # failed jobs by error code
    lost: list[str] = field(default_factory=list)  # accepted, never final (or missing)
    started_twice: list[str] = field(default_factory=list)
    executed_twice: list[str] = field(default_factory=list)  # overlapping executions
    written_twice: list[str] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)  # executions by outcome
    failovers_s: list[float] = field(default_factory=list)
    failovers_missed: int = 0  # kills after which no new leader decided within a minute
    faults: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)  # API answers by class
    dropped: int = 0  # submissions that never got an answer after all retries
    duplicates: int = 0  # submissions accepted twice (a retry after a lost answer)
    reconnects_s: list[float] = field(default_factory=list)
    updates_after_faults: dict[str, int] = field(default_factory=dict)
    browser_note: str = ""
    parity: str = ""
    redis_down_s: list[float] = field(default_factory=list)
    note: str = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


# ------------------------------------------------------------------ cluster
class Cluster:
    """supervisord with deploy/supervisord.conf, scratch PostgreSQL database and Redis."""

    def __init__(self, config: ChaosConfig, workdir: Path, pg_server: str) -> None:
        self.config = config
        self.workdir = workdir
        self.port = _free_port()
        self.redis_port = _free_port()
        self.pg_server = pg_server  # postgresql://.../postgres
        self.db_url = pg_server.rsplit("/", 1)[0] + f"/{config.database}"
        self.redis: subprocess.Popen[bytes] | None = None
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("QDASH_")},
            "DATABASE_URL": self.db_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "PORT": str(self.port),
            "QDASH_HOST": "127.0.0.1",
            "QDASH_HOME": str(ROOT),
            "QDASH_CLUSTER_DIR": str(workdir / "cluster"),
            "QDASH_EXECUTORS": "workers",
            "QDASH_WEB_PROCESSES": "2",
            "QDASH_SCHEDULERS": str(config.schedulers),
            "QDASH_EXECUTORS_PROCESSES": str(config.executors),
            "QDASH_EXECUTOR_CONCURRENCY": str(config.concurrency),
            "QDASH_EXECUTOR_MEMORY_MB": "1024",
            "QDASH_DEMO_TRAFFIC": "false",
            "QDASH_PROCESS_HEARTBEAT": "1",
            "QDASH_INTERACTIVE_TTL": "5",  # idle sessions expire within the run
            "QDASH_MAX_QUEUED_PER_USER": "1000000",
            "QDASH_MAX_OPEN_SESSIONS_PER_USER": "1000",
            "QDASH_API_REQUESTS_PER_MINUTE": "10000000",
            "QDASH_APPLY_WAIT": "0",
            "QDASH_DB_POOL_SIZE": "4",
            "SECRET_KEY": "chaos-benchmark-" + "x" * 40,
            "DEBUG": "false",
        }

    def create_database(self) -> None:
        self.drop_database()
        with psycopg.connect(self.pg_server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.config.database}"')

    def drop_database(self) -> None:
        name = self.config.database
        with psycopg.connect(self.pg_server, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    def start_redis(self) -> None:
        server = shutil.which("redis-server") or "redis-server"
        self.redis = subprocess.Popen(
            [server, "--bind", "127.0.0.1", "--port", str(self.redis_port)]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not _wait_port(self.redis_port, 20):
            raise RuntimeError("redis-server did not start")

    def restart_redis(self) -> float:
        """Stop Redis and start it again; how long it was away."""
        assert self.redis is not None
        began = time.monotonic()
        self.redis.terminate()
        self.redis.wait(10)
        time.sleep(1.0)
        self.start_redis()
        return time.monotonic() - began

    def start(self) -> None:
        (self.workdir / "cluster" / "logs").mkdir(parents=True, exist_ok=True)
        with (self.workdir / "supervisord.out").open("wb") as out:
            self.supervisor = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("supervisord")),
                    "-c",
                    "deploy/supervisord.conf",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if not _wait_port(self.port, 120):
            raise RuntimeError("the cluster's web port did not open")
        self.wait_ready(180)

    def wait_ready(self, seconds: float) -> None:
        """Until every web process reports itself and a leader has decided: supervisord
        opens the port before any daphne listens on it."""
        webs = int(self.env["QDASH_WEB_PROCESSES"])
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error):
                (ready,) = self.sql(
                    "SELECT count(*) FILTER (WHERE kind = 'web') >= %s AND "
                    "count(*) FILTER (WHERE kind = 'scheduler' AND detail ? 'first_step_at') > 0 "
                    "FROM scheduler_process WHERE heartbeat_at > now() - interval '5 seconds'",
                    [webs],
                )[0]
                if ready:
                    return
            time.sleep(0.5)
        raise RuntimeError("the cluster did not become ready")

    def ctl(self, *args: str) -> str:
        ctl = str(Path(sys.executable).with_name("supervisorctl"))
        out = subprocess.run(
            [ctl, "-c", "deploy/supervisord.conf", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return out.stdout

    def stop(self) -> None:
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.send_signal(signal.SIGTERM)
            try:
                self.supervisor.wait(90)
            except subprocess.TimeoutExpired:
                self.supervisor.kill()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)

    def manage(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())


# ------------------------------------------------------------------ traffic
class Client:
    """Researchers through the REST API, retrying what the cluster answers with a 5xx or
    does not answer (a restarting web process), as the real client does."""

    def __init__(self, base: str, keys: dict[str, str], result: ChaosResult) -> None:
        import requests

        self.base = base
        self.keys = keys
        self.result = result
        self.local = threading.local()
        self.lock = threading.Lock()
        self.accepted: list[str] = []  # job ids answered 201
        self.owner: dict[str, str] = {}  # job id -> the instance that submitted it
        self.requests = requests

    def _session(self) -> Any:
        if getattr(self.local, "http", None) is None:
            self.local.http = self.requests.Session()
        return self.local.http

    def call(self, method: str, path: str, instance: str, body: Any = None, key: str = "") -> Any:
        """The answer to a request, retried for up to two minutes; None if never answered.

        A `key` goes as the `Idempotency-Key` header, so a retried submission whose
        first answer was lost is not accepted twice."""
        headers = {"Authorization": f"Bearer {self.keys[instance]}"}
        if key:
            headers["Idempotency-Key"] = key
        deadline = time.monotonic() + 120
        delay = 0.2
        while True:
            try:
                answer = self._session().request(
                    method, self.base + path, json=body, headers=headers, timeout=30
                )
                kind = f"{answer.status_code // 100}xx"
                self._count(f"{kind} {answer.status_code}")
                if answer.status_code < 500 and answer.status_code != 429:
                    return answer
            except self.requests.RequestException as error:
                self._count(f"no answer ({type(error).__name__})")
                self.local.http = None
            if time.monotonic() > deadline:
                return None
            time.sleep(delay + random.random() * delay)
            delay = min(delay * 2, 2.0)

    def _count(self, what: str) -> None:
        with self.lock:
            self.result.requests[what] += 1

    def submit(self, instance: str, backend: str, tag: str, **extra: Any) -> str | None:
        body = {
            "program_id": "sampler",
            "backend": backend,
            "params": BELL,
            "tags": [tag],
            **extra,
        }
        answer = self.call("POST", "/api/v1/jobs", instance, body, key=tag)
        if answer is None:
            with self.lock:
                self.result.dropped += 1
            return None
        if answer.status_code in (200, 201):
            uid = str(answer.json()["id"])
            with self.lock:
                self.accepted.append(uid)
                self.owner[uid] = instance
            return uid
        return None  # refused by the rules (e.g. its session expired): not accepted


BELL: dict[str, Any] = {}  # the sampler params of a Bell circuit, filled in by run()


def _traffic(
    config: ChaosConfig, client: Client, backends: list[str], stop: threading.Event
) -> None:
    """Submit `config.jobs` jobs over `config.duration` seconds from several threads."""
    rng = random.Random(config.seed)
    instances = [path for path in client.keys if path != "hubR/g/p"]
    gap = config.duration / config.jobs * config.submitters
    counter = iter(range(10**9))
    counter_lock = threading.Lock()
    budget = [config.jobs]

    def take(n: int = 1) -> list[int]:
        with counter_lock:
            n = min(n, budget[0])
            budget[0] -= n
            return [next(counter) for _ in range(n)]

    def stream(seed: int) -> None:
        local = random.Random(seed)
        while not stop.is_set():
            tickets = take()
            if not tickets:
                return
            (n,) = tickets
            started = time.monotonic()
            roll = local.random()
            if roll < config.session_share:
                _session_stream(client, local, instances, backends, n, take)
            elif roll < config.session_share + config.cancel_share and client.accepted:
                with client.lock:
                    victim = local.choice(client.accepted[-200:])
                client.call("POST", f"/api/v1/jobs/{victim}/cancel", client.owner[victim])
                with counter_lock:
                    budget[0] += 1  # a cancel is not one of the jobs
            elif roll < config.session_share + config.cancel_share + 0.04:
                backend = backends[0]  # the reserved backend, by its reservation's instance
                client.submit("hubR/g/p", backend, f"chaos-{n}")
            else:
                client.submit(local.choice(instances), local.choice(backends), f"chaos-{n}")
            time.sleep(max(0.0, local.expovariate(1 / gap) - (time.monotonic() - started)))

    threads = [
        threading.Thread(target=stream, args=(rng.random(),), daemon=True)
        for _ in range(config.submitters)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _trickle(client: Client, backends: list[str], faults: threading.Thread) -> None:
    """A job a second while faults are still being injected after the traffic ended, so
    every fault meets a cluster with work to decide."""
    instances = [path for path in client.keys if path != "hubR/g/p"]
    n = 0
    while faults.is_alive():
        client.submit(instances[n % len(instances)], backends[n % len(backends)], f"trickle-{n}")
        n += 1
        faults.join(1.0)


def _session_stream(
    client: Client,
    rng: random.Random,
    instances: list[str],
    backends: list[str],
    first: int,
    take: Any,
) -> None:
    """A session opened either way, a few jobs into it, then closed (or left to expire)."""
    instance, backend = rng.choice(instances), rng.choice(backends)
    tickets = [first, *take(rng.randint(2, 6))]
    if rng.random() < 0.5:
        answer = client.call("POST", "/api/v1/sessions", instance, {"backend": backend})
        if answer is None or answer.status_code != 200:
            return
        session = answer.json()["id"]
        uid = client.submit(instance, backend, f"chaos-{tickets[0]}", session_id=session)
    else:
        uid = client.submit(instance, backend, f"chaos-{tickets[0]}", start_session=True)
        if uid is None:
            return
        job = client.call("GET", f"/api/v1/jobs/{uid}", instance)
        session = job.json().get("session_id") if job is not None else None
        if not session:
            return
    for n in tickets[1:]:
        time.sleep(rng.uniform(0.1, 2.0))
        client.submit(instance, backend, f"chaos-{n}", session_id=session)
    if rng.random() < 0.8:
        client.call("DELETE", f"/api/v1/sessions/{session}/close", instance)


# ------------------------------------------------------------------- faults
@dataclass
class FaultLog:
    kills: list[tuple[str, float]] = field(default_factory=list)  # (process name, wall time)
    web_restarts: list[float] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)  # fault kind -> last wall time


def _processes(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    rows = cluster.sql(
        "SELECT name, pid, leading_since, detail, extract(epoch FROM now() - heartbeat_at) "
        "FROM scheduler_process WHERE kind = %s",
        [kind],
    )
    return [
        {"name": r[0], "pid": r[1], "leading_since": r[2], "detail": r[3], "age": float(r[4])}
        for r in rows
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _kill_leader(cluster: Cluster, log: FaultLog, result: ChaosResult) -> None:
    """Wait for a leader that decided and a live standby; kill -9 the leader; time the
    next decision (the first step of whoever leads next)."""
    deadline = time.monotonic() + 120
    leader = None
    while time.monotonic() < deadline:
        rows = [r for r in _processes(cluster, "scheduler") if r["age"] < 3 and _alive(r["pid"])]
        leaders = [r for r in rows if r["detail"].get("first_step_at")]
        standbys = [r for r in rows if r["detail"].get("role") == "standby"]
        if leaders and standbys:
            leader = leaders[0]
            break
        time.sleep(0.2)
    if leader is None:
        return
    os.kill(leader["pid"], signal.SIGKILL)
    killed_at = time.time()
    log.kills.append((leader["name"], killed_at))
    result.faults["leader kill -9"] += 1
    while time.time() - killed_at < 60:
        for row in _processes(cluster, "scheduler"):
            first = row["detail"].get("first_step_at")
            if row["name"] != leader["name"] and first:
                at = datetime.fromisoformat(first).timestamp()
                if at > killed_at:
                    result.failovers_s.append(at - killed_at)
                    return
        time.sleep(0.05)
    result.failovers_missed += 1


def _kill_executor(cluster: Cluster, log: FaultLog, result: ChaosResult) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        busy = [
            r
            for r in _processes(cluster, "executor")
            if r["detail"].get("running") and r["age"] < 3 and _alive(r["pid"])
        ]
        if busy:
            os.kill(busy[0]["pid"], signal.SIGKILL)
            log.kills.append((busy[0]["name"], time.time()))
            result.faults["executor kill -9 (mid-job)"] += 1
            return
        time.sleep(0.05)


def _terminate_connections(cluster: Cluster, result: ChaosResult) -> None:
    rows = cluster.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = ANY(%s)",
        [cluster.config.database, list(APP_NAMES)],
    )
    result.faults["pg_terminate_backend (schedulers, web)"] += 1
    result.faults["  connections terminated"] += int(rows[0][0])


def _faults(
    config: ChaosConfig, cluster: Cluster, result: ChaosResult, log: FaultLog, stop: threading.Event
) -> None:
    rng = random.Random(config.seed + 1)
    plan = (
        ["leader"] * config.leader_kills
        + ["executor"] * config.executor_kills
        + ["redis"] * config.redis_restarts
        + ["pg"] * config.pg_terminations
        + ["web"] * config.web_restarts
    )
    rng.shuffle(plan)
    web = 0
    for kind in plan:
        if stop.is_set():
            break
        time.sleep(rng.uniform(0.5, 2.0))
        try:
            if kind == "leader":
                _kill_leader(cluster, log, result)
            elif kind == "executor":
                _kill_executor(cluster, log, result)
            elif kind == "redis":
                result.redis_down_s.append(cluster.restart_redis())
                result.faults["Redis restart"] += 1
            elif kind == "pg":
                _terminate_connections(cluster, result)
            else:
                log.web_restarts.append(time.time())
                cluster.ctl("restart", f"web:web-{web % 2}")
                web += 1
                result.faults["web process restart"] += 1
            log.last[kind] = time.time()
        except Exception as error:  # noqa: BLE001 - a fault that could not be injected
            result.note += f" {kind} fault failed: {error};"


# ------------------------------------------------------------------ measure
def _measure(cluster: Cluster, client: Client, log: FaultLog, result: ChaosResult) -> None:
    accepted = set(client.accepted)
    result.accepted = len(accepted)
    rows = cluster.sql("SELECT uid, status, error FROM scheduler_job")
    status = {uid: (s, e) for uid, s, e in rows}
    for uid in accepted:
        if uid not in status or status[uid][0] not in FINAL:
            result.lost.append(uid)
        else:
            result.final[status[uid][0]] += 1
            if status[uid][1]:
                result.errors[status[uid][1]] += 1
    result.started_twice = [
        str(r[0])
        for r in cluster.sql(
            "SELECT job_id FROM scheduler_event WHERE kind = 'job_started' "
            "GROUP BY job_id HAVING count(*) > 1"
        )
    ]
    result.written_twice = [
        str(r[0])
        for r in cluster.sql(
            "SELECT job_id FROM scheduler_execution WHERE outcome = 'written' "
            "GROUP BY job_id HAVING count(*) > 1"
        )
    ]
    result.attempts = Counter(
        {
            (r[0] or "(worker killed)"): int(r[1])
            for r in cluster.sql(
                "SELECT outcome, count(*) FROM scheduler_execution GROUP BY outcome"
            )
        }
    )
    killed = dict(log.kills)
    runs: dict[int, list[tuple[float, float]]] = {}
    now = time.time()
    for job, worker, started, ended in cluster.sql(
        "SELECT job_id, worker, extract(epoch FROM started_at), extract(epoch FROM ended_at) "
        "FROM scheduler_execution"
    ):
        end = float(ended) if ended is not None else killed.get(worker, now)
        runs.setdefault(job, []).append((float(started), end))
    for job, spans in runs.items():
        spans.sort()
        if any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)):
            result.executed_twice.append(str(job))
    tags = cluster.sql(
        "SELECT count(*) FROM (SELECT tags FROM scheduler_job GROUP BY tags "
        "HAVING count(*) > 1) AS twice"
    )
    result.duplicates = int(tags[0][0])


def _browser_verdicts(data: dict[str, Any], log: FaultLog, result: ChaosResult) -> None:
    opened, closed, messages = data["opened"], data["closed"], data["messages"]
    for restart in log.web_restarts:
        close = next((c for c in closed if c >= restart - 1), None)
        if close is None or close > restart + 60:
            continue  # the browser's socket was on the other web process
        reopen = next((o for o in opened if o > close), None)
        if reopen is not None:
            result.reconnects_s.append(reopen - close)
    for kind, at in log.last.items():
        result.updates_after_faults[kind] = sum(1 for m in messages if m > at)
    if data.get("errors"):
        result.browser_note = f"{len(data['errors'])} page errors, e.g. {data['errors'][0]}"


# ---------------------------------------------------------------------- run
def run(config: ChaosConfig, workdir: Path, pg_server: str) -> ChaosResult:
    result = ChaosResult(config)
    began = time.monotonic()
    cluster = Cluster(config, workdir, pg_server)
    cluster.create_database()
    cluster.start_redis()
    browser: subprocess.Popen[bytes] | None = None
    stop_file = workdir / "browser.stop"
    stop_file.unlink(missing_ok=True)
    try:
        setup_path = workdir / "setup.json"
        child = [sys.executable, "-m", "bench.chaos_child"]
        subprocess.run(
            [*child, "setup", "--backends", str(config.backends), "--result", str(setup_path)]
            + ["--job-seconds", str(config.job_seconds)],
            cwd=ROOT,
            env=cluster.env,
            check=True,
        )
        setup = json.loads(setup_path.read_text())
        BELL.update(_bell())
        cluster.start()
        base = f"http://127.0.0.1:{cluster.port}"
        if config.browser and Path("/usr/bin/chromium").exists():
            browser = subprocess.Popen(
                [*child, "browser", "--url", base + "/", "--sessionid", setup["sessionid"]]
                + ["--stop", str(stop_file), "--result", str(workdir / "browser.json")],
                cwd=ROOT,
                env=cluster.env,
            )
        client = Client(base, setup["keys"], result)
        stop = threading.Event()
        log = FaultLog()
        faults = threading.Thread(target=_faults, args=(config, cluster, result, log, stop))
        faults.start()
        _traffic(config, client, setup["backends"], stop)
        _trickle(client, setup["backends"], faults)
        faults.join()
        _drain(cluster, config.drain_timeout)
        time.sleep(3.0)  # the last updates reach the browser
        if browser is not None:
            stop_file.touch()
            browser.wait(120)
            recorded = workdir / "browser.json"
            if recorded.exists():
                _browser_verdicts(json.loads(recorded.read_text()), log, result)
            else:
                result.browser_note = f"the browser exited with {browser.returncode}, no record"
        _measure(cluster, client, log, result)
        replay = cluster.manage("replay", "--check", timeout=1800)
        lines = (replay.stdout + replay.stderr).strip().splitlines()
        result.parity = lines[-1] if lines else f"replay exited with {replay.returncode}"
    finally:
        if browser is not None and browser.poll() is None:
            stop_file.touch()
            with contextlib.suppress(subprocess.TimeoutExpired):
                browser.wait(30)
            browser.kill()
        cluster.stop()
    result.wall_s = time.monotonic() - began
    return result


def _drain(cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (left,) = cluster.sql(
            "SELECT count(*) FROM scheduler_job WHERE status IN ('Queued', 'Running')"
        )[0]
        inputs = cluster.sql("SELECT count(*) FROM scheduler_input")[0][0]
        if left == 0 and inputs == 0:
            return
        time.sleep(1.0)


def _bell() -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from scheduler import circuits; "
            "print(json.dumps(circuits.sampler_params([circuits.ghz(2)], 100)))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


# ------------------------------------------------------------------- report
def report(result: ChaosResult) -> str:
    c = result.config

    def zero(values: list[str]) -> str:
        return "0: met" if not values else f"{len(values)}: NOT met (e.g. {values[0]})"

    fo = result.failovers_s
    missed = f", {result.failovers_missed} missed" if result.failovers_missed else ""
    failover = "no failover measured"
    if fo:
        p50, p95 = percentile(fo, 50), percentile(fo, 95)
        failover = f"{p50:.2f} / {p95:.2f} s ({len(fo)} failovers{missed})"
    met = fo and percentile(fo, 95) < FAILOVER_TARGET_S and not result.failovers_missed
    retried = sum(n for k, n in result.requests.items() if k.startswith(("5xx", "no answer")))
    lines = [
        "## Chaos: the cluster under faults",
        "",
        f"{c.jobs:,} jobs over {c.duration:.0f} s on {c.backends} backends "
        f"(modeled {c.job_seconds:g} s each), {c.schedulers} schedulers, {c.executors} executors "
        f"x {c.concurrency}, 2 web processes; wall {result.wall_s:.0f} s.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| jobs lost (accepted but never finished) | {zero(result.lost)} | 0 |",
        f"| jobs started twice | {zero(result.started_twice)} | 0 |",
        f"| jobs executed twice at once | {zero(result.executed_twice)} | 0 |",
        f"| results written twice | {zero(result.written_twice)} | 0 |",
        f"| failover, kill to the next decision, p50 / p95 | {failover} | "
        f"p95 < {FAILOVER_TARGET_S:g} s: {'met' if met else 'NOT met'} |",
        f"| submissions refused during failover | {retried:,} answers were a 5xx or none and "
        f"were retried; {result.dropped} dropped after two minutes of retries | "
        f"none silently dropped: {'met' if result.dropped == 0 else 'NOT met'} |",
        f"| dashboard reconnect time | {_spans(result.reconnects_s)} | reported |",
        f"| replay with the memory engine | {result.parity or 'not run'} | identical |",
        "",
        f"Accepted jobs: {result.accepted:,}; final: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(result.final.items()))
        + (
            "; errors: " + ", ".join(f"{k} {v}" for k, v in sorted(result.errors.items()))
            if result.errors
            else ""
        )
        + f". Accepted twice (a retried submission, sent with an `Idempotency-Key`, whose "
        "first answer was lost): "
        f"{result.duplicates}.",
        "",
        "Faults injected: " + ", ".join(f"{k} {v}" for k, v in result.faults.items()) + ".",
        "Redis away: " + _spans(result.redis_down_s) + ".",
        "Failovers: "
        + (
            f"min {min(fo):.2f} s, p90 {percentile(fo, 90):.2f} s, max {max(fo):.2f} s; "
            f"{sum(1 for v in fo if v >= FAILOVER_TARGET_S)} of {len(fo)} took "
            f"{FAILOVER_TARGET_S:g} s or more"
            if fo
            else "none measured"
        )
        + ".",
        "Executions by outcome: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(result.attempts.items()))
        + ".",
        "API answers: "
        + ", ".join(f"{k}: {v:,}" for k, v in sorted(result.requests.items()))
        + ".",
        "Browser updates after the last fault of each kind: "
        + (
            ", ".join(f"{k} {v}" for k, v in sorted(result.updates_after_faults.items()))
            or "no browser"
        )
        + (f" ({result.browser_note})" if result.browser_note else "")
        + ".",
    ]
    if result.note:
        lines += ["", f"Note:{result.note}"]
    return "\n".join(lines) + "\n"


def _spans(values: list[float]) -> str:
    if not values:
        return "none measured"
    return ", ".join(f"{v:.2f} s" for v in values)

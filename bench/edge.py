"""`python -m bench --edge`: the cost of the API's edge on the cluster. Measures, never asserts.

For each count of web processes (2, the cluster of `make cluster`, and 4): the
cluster of `deploy/supervisord.conf` (daphne web processes, a scheduler leader,
an executor worker) on a scratch PostgreSQL database and a scratch Redis, with
the `bench.engine_child prepare` data (8 backends each running a long job, a
user with an API key). `wrk` with 4 connections (4 concurrent clients, one
access token) drives, one after the other in the same run:

1. `GET /healthz`, the baseline: the same middleware and server, no token, no
   database;
2. `GET /api/v1/backends/{name}/status` with the token (an authenticated read);
3. `POST /api/v1/jobs` with the token and the real client's payload (a Bell
   circuit, 1000 shots).

Then it waits for the leader to apply every submission and counts the jobs
stored against the 201 answers (nothing accepted may be lost). At the first size
it also profiles both API calls in-process with cProfile (`bench.edge_child`):
the top functions and the statements each call sends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import ROOT

READ_TARGET = 0.5  # authenticated reads per second / healthz per second
SUBMIT_TARGET = 0.5  # submissions per second / authenticated reads per second
CONNECTIONS = 4
# Each call is driven this many times, each with new connections, and the median run is
# shown: the kernel spreads connections over the web processes by a hash of their
# addresses, so four connections can all land on one process (one run in eight with two).
REPEATS = 3
TARGETS = {
    "healthz": ("GET", "/healthz"),
    "status": ("GET", "/api/v1/backends/qpu_00/status"),
    "post": ("POST", "/api/v1/jobs"),
    "post-new": ("POST", "/api/v1/jobs"),
}
LABELS = {
    "healthz": "`GET /healthz`",
    "status": "`GET /backends/{name}/status`, token",
    "post": "`POST /jobs`, token, the same input",
    "post-new": "`POST /jobs`, token, a new input each time",
}

# Each request's pub asks for another shots count: a new input, not answered from memory.
VARY = """
local threads, template, sent = 0, wrk.body, 0
setup = function(thread)
  thread:set("offset", threads * 1000000)
  threads = threads + 1
end
request = function()
  sent = sent + 1
  local shots = 1001 + ((offset or 0) + sent) % 90000
  local body = string.gsub(template, ", 1000%]%]", ", " .. shots .. "]]", 1)
  return wrk.format(nil, nil, nil, body)
end
"""
WRK_SCRIPT = """
wrk.method = "{method}"
{body}
wrk.headers["Content-Type"] = "application/json"
{auth}
{vary}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.duration,
    latency:percentile(50), latency:percentile(95)))
end
"""


@dataclass
class Rate:
    requests: int = 0
    errors: int = 0  # non-2xx answers, socket errors and timeouts
    per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per answer, by role


@dataclass
class EdgeRun:
    webs: int
    rates: dict[str, Rate] = field(default_factory=dict)
    accepted: int = 0  # 2xx answers to POST /jobs
    stored: int = 0  # jobs the database holds from them
    pending: int = 0  # inputs the leader had not applied after the drain
    drain_s: float = 0.0
    note: str = ""


@dataclass
class EdgeResult:
    runs: list[EdgeRun] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def measure(
    webs: list[int], seconds: float, workdir: Path, pg_server: str, profile_reps: int
) -> EdgeResult:
    result = EdgeResult()
    if shutil.which("wrk") is None:
        result.notes.append("needs wrk (Debian package `wrk`; `make bench` installs it)")
        return result
    for n, count in enumerate(webs):
        print(f"edge: {count} web processes", flush=True)
        run, profile = _measure_cluster(count, seconds, workdir, pg_server, profile_reps * (n == 0))
        result.runs.append(run)
        result.profile = result.profile or profile
    return result


def _measure_cluster(
    webs: int, seconds: float, workdir: Path, pg_server: str, profile_reps: int
) -> tuple[EdgeRun, dict[str, Any]]:
    from tests.acceptance.chaos.cluster import Cluster
    from tests.acceptance.chaos.config import ChaosConfig

    config = ChaosConfig(
        database=f"qdash_edge_{os.getpid()}", schedulers=1, executors=1, browser=False
    )
    cluster = Cluster(config, workdir / f"edge-{webs}", pg_server)
    cluster.env["QDASH_WEB_PROCESSES"] = str(webs)
    cluster.env["QDASH_DB_POOL_SIZE"] = "8"  # as `make cluster`
    run, profile = EdgeRun(webs), {}
    cluster.create_database()
    cluster.start_redis()
    try:
        prepared = _child(cluster.env, workdir, "bench.engine_child", "prepare")
        cluster.start()
        base = f"http://127.0.0.1:{cluster.port}"
        token = _token(base, prepared["key"])
        headers = {"Authorization": f"Bearer {token}", "Service-CRN": prepared["crn"]}
        body = _client_body()
        _warm(base, headers, body)
        before, accepted = _jobs(cluster), 0
        for name, (method, path) in TARGETS.items():
            script = workdir / f"edge-{name}.lua"
            # The probe as a load balancer sends it: no token.
            sent = {} if name == "healthz" else headers
            script.write_text(
                _script(method, body if method == "POST" else None, sent, vary=name == "post-new")
            )
            cpu_before = _cpu_by_role()
            runs = sorted((_wrk(base + path, script, seconds) for _ in range(REPEATS)), key=_rate)
            run.rates[name] = runs[len(runs) // 2]
            answered = sum(each.requests - each.errors for each in runs)
            if method == "POST":
                accepted += answered
            run.rates[name].cpu_ms = _per_answer(cpu_before, _cpu_by_role(), answered)
            each = ", ".join(f"{r.per_s:.0f}/s p95 {r.p95_ms:.0f} ms" for r in runs)
            print(f"  {LABELS[name]}: {run.rates[name].per_s:.0f}/s ({each})", flush=True)
        run.accepted = accepted
        run.drain_s = _drain(cluster)
        run.stored = _jobs(cluster) - before
        run.pending = _count(cluster, "SELECT count(*) FROM scheduler_input")
        if profile_reps:
            print("  profile: POST /jobs and GET /backends/{name}/status in-process", flush=True)
            profile = _child(
                cluster.env,
                workdir,
                "bench.edge_child",
                "profile",
                "--key",
                prepared["key"],
                "--crn",
                prepared["crn"],
                "--reps",
                str(profile_reps),
            )
    except Exception as error:  # noqa: BLE001 - reported, the other sizes still run
        run.note = f"{type(error).__name__}: {error}"
    finally:
        cluster.stop()
        cluster.drop_database()
    return run, profile


def _child(env: dict[str, str], workdir: Path, module: str, *args: str) -> dict[str, Any]:
    result = workdir / f"{module}-{args[0]}.json"
    result.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", module, *args, "--result", str(result)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    answer: dict[str, Any] = json.loads(result.read_text())
    return answer


def _token(base: str, key: str) -> str:
    import requests

    response = requests.post(f"{base}/identity/token", data={"apikey": key}, timeout=60)
    response.raise_for_status()
    return str(response.json()["access_token"])


def _client_body() -> bytes:
    from .engine import _client_body as body

    return body()


def _warm(base: str, headers: dict[str, str], body: bytes) -> None:
    """Every web process's connections, sandbox workers and caches, before timing."""
    import requests

    with requests.Session() as session:
        for _ in range(20):
            session.get(f"{base}/healthz", timeout=60)
            session.get(f"{base}{TARGETS['status'][1]}", headers=headers, timeout=60)
            session.post(
                f"{base}{TARGETS['post'][1]}",
                data=body,
                headers=headers | {"Content-Type": "application/json"},
                timeout=60,
            )


def _script(method: str, body: bytes | None, headers: dict[str, str], *, vary: bool) -> str:
    return WRK_SCRIPT.format(
        method=method,
        vary=VARY if vary else "",
        body=f"wrk.body = {json.dumps(body.decode())}" if body is not None else "",
        auth="\n".join(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
        ),
    )


def _wrk(url: str, script: Path, seconds: float) -> Rate:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "60s"]
    command += ["-s", str(script), url]
    output = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    line = next((ln for ln in output.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        return Rate()
    requests_, errors, duration_us, p50, p95 = line.split()[1:]
    done = int(requests_)
    return Rate(
        requests=done,
        errors=int(errors),
        per_s=(done - int(errors)) / (int(duration_us) / 1e6),
        p50_ms=float(p50) / 1000,
        p95_ms=float(p95) / 1000,
    )


ROLES = (
    ("wrk", "wrk"),
    ("web", "qdash.web"),
    ("scheduler", "manage.py scheduler"),
    ("executor", "manage.py executor"),
    ("PostgreSQL", "postgres"),
    ("Redis", "redis-server"),
)


def _role(process: Any) -> str:
    """What a process is part of: itself or its nearest ancestor that `ROLES` names
    (the web processes' decoding sandboxes count as web)."""
    import psutil

    try:
        chain = [process, *process.parents()]
        for each in chain:
            line = " ".join(each.cmdline()) or each.name()
            for role, mark in ROLES:
                if mark in line:
                    return role
    except psutil.Error:
        pass
    return "other"


def _cpu_by_role() -> dict[int, tuple[str, float]]:
    """Every process's role and CPU seconds so far (user and system)."""
    import resource

    import psutil

    # wrk has ended by the second reading: its time is among this process's waited-for children.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {-1: ("wrk", children.ru_utime + children.ru_stime)}
    for process in psutil.process_iter():
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        out[process.pid] = (_role(process), times.user + times.system)
    return out


def _per_answer(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], answered: int
) -> dict[str, float]:
    """CPU milliseconds per answer, by role, spent between two `_cpu_by_role` readings
    (a process that ended between them is not counted)."""
    spent: dict[str, float] = {}
    for pid, (role, seconds) in after.items():
        start = before.get(pid, (role, 0.0))[1]
        spent[role] = spent.get(role, 0.0) + max(0.0, seconds - start)
    return {role: 1000 * total / max(1, answered) for role, total in spent.items()}


def _rate(rate: Rate) -> float:
    return rate.per_s


def _drain(cluster: Any, limit: float = 300.0) -> float:
    start = time.monotonic()
    while _count(cluster, "SELECT count(*) FROM scheduler_input") and (
        time.monotonic() - start < limit
    ):
        time.sleep(0.5)
    return time.monotonic() - start


def _jobs(cluster: Any) -> int:
    return _count(cluster, "SELECT count(*) FROM scheduler_job")


def _count(cluster: Any, sql: str) -> int:
    rows = cluster.sql(sql)
    return int(rows[0][0]) if rows else 0


# ------------------------------------------------------------------- report
def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def report(result: EdgeResult) -> list[str]:
    lines = ["## The API's edge on the cluster", ""]
    if not result.runs:
        return [*lines, *[f"- {note}" for note in result.notes], ""]
    lines += ["### targets", ""]
    for run in result.runs:
        if run.note:
            lines.append(f"- {run.webs} web processes: not measured: {run.note}")
            continue
        reads = _ratio(run.rates["status"].per_s, run.rates["healthz"].per_s)
        posts = _ratio(run.rates["post"].per_s, run.rates["status"].per_s)
        new = _ratio(run.rates["post-new"].per_s, run.rates["status"].per_s)
        lost = max(0, run.accepted - run.stored)
        lines += [
            f"- {run.webs} web processes: authenticated reads / healthz {reads:.2f} "
            f"(target ≥ {READ_TARGET}): {_met(reads >= READ_TARGET)}; submissions / reads "
            f"{posts:.2f} with the same input (target ≥ {SUBMIT_TARGET}): "
            f"{_met(posts >= SUBMIT_TARGET)}, {new:.2f} with a new input each time: "
            f"{_met(new >= SUBMIT_TARGET)}; accepted and not stored: {lost} (target 0): "
            f"{_met(lost == 0)}",
        ]
    lines += [
        "",
        f"| web processes | {' | '.join(LABELS.values())} | reads / healthz | "
        "submissions / reads (same; new) | 201s; jobs stored; inputs pending after the drain |",
        "|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for run in result.runs:
        if run.note:
            continue
        cells = [
            f"{run.rates[n].per_s:,.0f}/s (p50 {run.rates[n].p50_ms:.1f} ms, "
            f"p95 {run.rates[n].p95_ms:.1f} ms, {run.rates[n].errors} errors)"
            for n in TARGETS
        ]
        reads = _ratio(run.rates["status"].per_s, run.rates["healthz"].per_s)
        posts = _ratio(run.rates["post"].per_s, run.rates["status"].per_s)
        new = _ratio(run.rates["post-new"].per_s, run.rates["status"].per_s)
        lines.append(
            f"| {run.webs} | {' | '.join(cells)} | {reads:.2f} | {posts:.2f}; {new:.2f} | "
            f"{run.accepted:,}, {run.stored:,}, {run.pending} (applied {run.drain_s:.1f} s after) |"
        )
    lines += [
        "",
        f"`wrk` with {CONNECTIONS} connections and one access token against the cluster of "
        "`deploy/supervisord.conf` (a scheduler leader and an executor worker beside the web "
        "processes) on a scratch PostgreSQL database and Redis; each call for the same time, "
        f"one after the other, {REPEATS} times with new connections: the median run is shown. "
        "Jobs stored can exceed the 201s counted: wrk stops counting "
        "with requests still in flight, which the server stores and answers. Client, server, "
        "PostgreSQL and Redis share this machine's CPUs.",
        "",
        *_cpu_lines(result),
        *_profile_lines(result.profile),
        *[f"- {note}" for note in result.notes],
    ]
    return lines


def _cpu_lines(result: EdgeResult) -> list[str]:
    """Where the machine's CPU went while each call was driven, per answer."""
    roles = [role for role, _ in ROLES] + ["other"]
    lines = [
        "### CPU per answer, by process (ms)",
        "",
        f"| web processes | call | {' | '.join(roles)} | all |",
        "|--:|---|" + "--:|" * (len(roles) + 1),
    ]
    for run in result.runs:
        for name, rate in run.rates.items():
            if not rate.cpu_ms:
                continue
            cells = [f"{rate.cpu_ms.get(role, 0.0):.2f}" for role in roles]
            total = sum(rate.cpu_ms.values())
            lines.append(f"| {run.webs} | {LABELS[name]} | {' | '.join(cells)} | {total:.2f} |")
    return [
        *lines,
        "",
        "CPU time of every process on the machine while `wrk` drove the call, divided by "
        "the answers; a process is counted with its nearest named ancestor.",
        "",
    ]


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    lines = []
    for name, entry in profile.items():
        lines += [
            f"### where the time of `{name}` goes (in-process, cProfile)",
            "",
            f"{entry['ms_per_call']:.2f} ms a call under the profiler (Django's test client, "
            f"the whole middleware chain); the statements one call sends "
            f"({len(entry['queries'])}):",
            "",
            *[f"- `{sql}`" for sql in entry["queries"]],
            "",
            "```",
            entry["top"].rstrip(),
            "```",
            "",
        ]
    return lines

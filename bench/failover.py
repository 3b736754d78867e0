"""`python -m bench --failover`: a leader's kill -9 to its successor's first decision.

On a scratch PostgreSQL database (next to the one DATABASE_URL names) and a
scratch redis-server, with the engine bench's queue (`bench.engine_child`:
8 backends each busy with a 10-hour job, so the queue only grows):

1. for each queue size: in one process, a new leader's first step after a cold
   load, and the same step taking over a standby's memory (`bench.failover_child
   loads`);
2. at the kill sizes: two `manage.py scheduler` processes, a leader and a
   standby, with submissions and cancellations trickling in through the web
   processes' code; the leader is killed with SIGKILL `--kills` times (a new
   standby is started after each kill and waited for), and each failover is timed
   from the kill to the `first_step_at` the new leader reports in its process row.
   Once with standbys that follow the journal (warm), once with `--cold-standby`
   ones (the baseline: a full load on taking over), in the same run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .core import ROOT, percentile
from .engine import _child, _drop, _recreate
from .live import _stop
from .services import missing_services, scratch_redis

TARGET_S = 1.0  # failover p95 at the largest kill size, with a warm standby
READY_S = 600.0  # longest wait for a leader and a ready standby
MODES = ("warm", "cold")
STEADY_S = 2.5  # a standby is ready once its heartbeats said it was hot this long


@dataclass
class SizeRun:
    queued: int
    fill: dict[str, Any] = field(default_factory=dict)
    loads: dict[str, Any] = field(default_factory=dict)
    failover_s: dict[str, list[float]] = field(default_factory=dict)  # mode -> seconds
    missed: dict[str, int] = field(default_factory=dict)
    takeovers: dict[str, int] = field(default_factory=dict)  # warm first steps, by mode


@dataclass
class FailoverResult:
    sizes: list[SizeRun] = field(default_factory=list)
    kill_sizes: list[int] = field(default_factory=list)
    kills: int = 0
    rate: float = 0.0
    notes: list[str] = field(default_factory=list)


class Schedulers:
    """`manage.py scheduler` processes, and what their process rows say."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, *, cold: bool) -> int:
        log = (self.workdir / "schedulers.log").open("ab")
        command = [sys.executable, "manage.py", "scheduler", "--poll", "1"]
        process = subprocess.Popen(
            command + (["--cold-standby"] if cold else []),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        self.processes[process.pid] = process
        return process.pid

    def rows(self) -> list[dict[str, Any]]:
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            rows = conn.execute(
                "SELECT name, pid, leading_since, detail FROM scheduler_process "
                "WHERE kind = 'scheduler'"
            ).fetchall()
        alive = {pid for pid, p in self.processes.items() if p.poll() is None}
        return [
            {"name": r[0], "pid": r[1], "leading": r[2] is not None, "detail": r[3]}
            for r in rows
            if r[1] in alive
        ]

    def ready(self, *, cold: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """Wait for a leader that decided and a standby ready to take over (warm: its
        memory loaded and following)."""
        deadline = time.monotonic() + READY_S
        warm_since: dict[str, float] = {}  # a standby counts once two heartbeats say so
        while time.monotonic() < deadline:
            rows = self.rows()
            leaders = [r for r in rows if r["leading"] and r["detail"].get("first_step_at")]
            standbys = [r for r in rows if r["detail"].get("role") == "standby"]
            if not cold:
                now = time.monotonic()
                warm = [r for r in standbys if _hot(r["detail"].get("standby", {}))]
                warm_since = {r["name"]: warm_since.get(r["name"], now) for r in warm}
                standbys = [r for r in warm if now - warm_since[r["name"]] >= STEADY_S]
            if leaders and standbys:
                return leaders[0], standbys[0]
            time.sleep(0.2)
        raise RuntimeError("no leader and ready standby in time (see schedulers.log)")

    def kill(self, pid: int) -> float:
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        self.processes.pop(pid).wait()
        return killed_at

    def first_step_after(self, killed_at: float, seconds: float = 120.0) -> dict[str, Any] | None:
        """The row of the process whose first decision as leader came after the kill."""
        while time.time() - killed_at < seconds:
            for row in self.rows():
                first = row["detail"].get("first_step_at")
                if first and datetime.fromisoformat(first).timestamp() > killed_at:
                    return row
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        for process in self.processes.values():
            _stop(process)
        self.processes = {}


def _hot(standby: dict[str, Any]) -> bool:
    """A standby whose memory is loaded and caught up with the leader's journal (at its
    last look, under a second and a few steps behind)."""
    lag = standby.get("lag_s")
    return (
        bool(standby.get("warm"))
        and lag is not None
        and lag < 1.0
        and (standby.get("behind_steps", 0) <= 5)
    )


def _failovers(
    env: dict[str, str], workdir: Path, kills: int, rate: float, *, cold: bool, run: SizeRun
) -> None:
    mode = "cold" if cold else "warm"
    schedulers = Schedulers(env, workdir)
    trickle = subprocess.Popen(
        [sys.executable, "-m", "bench.failover_child", "trickle", "--rate", str(rate)]
        + ["--result", str(workdir / "trickle.json")],
        cwd=ROOT,
        env=env,
        stdout=(workdir / "trickle.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    times, missed, warm_starts = [], 0, 0
    try:
        schedulers.start(cold=cold)
        schedulers.start(cold=cold)
        for n in range(kills):
            leader, _ = schedulers.ready(cold=cold)
            killed_at = schedulers.kill(leader["pid"])
            row = schedulers.first_step_after(killed_at)
            if row is None:
                missed += 1
            else:
                at = datetime.fromisoformat(row["detail"]["first_step_at"]).timestamp()
                times.append(at - killed_at)
                warm_starts += row["detail"].get("loads", 1) == 0
                print(f"  {mode} kill {n + 1}: {times[-1]:.2f} s", flush=True)
            schedulers.start(cold=cold)  # the next standby
    finally:
        _stop(trickle)
        schedulers.stop()
    run.failover_s[mode], run.missed[mode], run.takeovers[mode] = times, missed, warm_starts


def measure(
    sizes: list[int], kill_sizes: list[int], kills: int, rate: float, workdir: Path
) -> FailoverResult:
    result = FailoverResult(kill_sizes=kill_sizes, kills=kills, rate=rate)
    missing = missing_services("the target is")
    if missing:
        result.notes.append(missing)
        return result
    name = f"qdash_bench_failover_{os.getpid()}"
    with scratch_redis() as redis_url:
        env = {
            **os.environ,
            "DATABASE_URL": _recreate(name),
            "REDIS_URL": redis_url,
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "k" * 60,
            "QDASH_MAX_QUEUED_PER_USER": "1000000",
            "QDASH_PROCESS_HEARTBEAT": "1",
        }
        try:
            print("failover: prepare", flush=True)
            _child("prepare", env, workdir)
            for size in sorted(set(sizes) | set(kill_sizes)):
                result.sizes.append(_size_run(size, kill_sizes, kills, rate, env, workdir))
        finally:
            _drop(name)
    return result


def _size_run(
    size: int, kill_sizes: list[int], kills: int, rate: float, env: dict[str, str], workdir: Path
) -> SizeRun:
    run = SizeRun(size)
    print(f"failover: fill to {size:,} queued", flush=True)
    run.fill = _child("fill", env, workdir, "--queued", str(size))
    run.loads = _loads(env, workdir)
    print(
        f"  first step: cold load {min(run.loads['cold_s']):.2f} s, "
        f"warm {min(run.loads['warm_s']):.3f} s",
        flush=True,
    )
    if size in kill_sizes:
        for mode in MODES:
            _failovers(env, workdir, kills, rate, cold=mode == "cold", run=run)
    return run


def _loads(env: dict[str, str], workdir: Path) -> dict[str, Any]:
    out = workdir / "failover-loads.json"
    subprocess.run(
        [sys.executable, "-m", "bench.failover_child", "loads", "--result", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    answer: dict[str, Any] = json.loads(out.read_text())
    return answer


def _median(values: list[float]) -> float:
    return percentile(values, 50)


def report(result: FailoverResult) -> list[str]:
    if not result.sizes:
        return ["## Failover", "", *[f"- {note}" for note in result.notes], ""]
    largest = max(result.kill_sizes) if result.kill_sizes else None
    lines = [
        "## Failover: kill -9 of the leader to the new leader's first decision",
        "",
        f"Two `manage.py scheduler` processes (a leader and a standby) beside {result.rate:g} "
        "submissions a second (one in ten cancelled) through the web processes' code; the "
        f"leader killed {result.kills} times per row, a new standby started and waited for "
        "after each kill. *warm*: the standby loaded once and follows the leader's journal; "
        "*cold* (the baseline, `--cold-standby`): it loads in full on taking over. Target: "
        f"p95 < {TARGET_S:g} s at {largest or 0:,} queued, warm.",
        "",
        "| queued | standby | kills | p50 | p95 | max | missed | warm take-overs | target |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in result.sizes:
        for mode in MODES:
            times = run.failover_s.get(mode)
            if times is None:
                continue
            p95 = percentile(times, 95) if times else float("inf")
            verdict = "—"
            if mode == "warm" and run.queued == largest:
                met = times and p95 < TARGET_S and not run.missed[mode]
                verdict = f"p95 < {TARGET_S:g} s: **{'met' if met else 'missed'}**"
            stats = "— | — | —"
            if times:
                stats = f"{_median(times):.2f} s | {p95:.2f} s | {max(times):.2f} s"
            lines.append(
                f"| {run.queued:,} | {mode} | {len(times)} | {stats} | {run.missed[mode]} | "
                f"{run.takeovers[mode]} | {verdict} |"
            )
    lines += [
        "",
        "In one process, the new leader's first step (median of "
        f"{len(result.sizes[0].loads.get('cold_s', []))}):",
        "",
        "| queued | cold load (today) | standby's own load, once | warm take-over | same state |",
        "|---:|---:|---:|---:|---|",
    ]
    for run in result.sizes:
        loads = run.loads
        lines.append(
            f"| {run.queued:,} | {_median(loads['cold_s']):.3f} s | "
            f"{_median(loads['standby_load_s']):.3f} s | {_median(loads['warm_s']):.3f} s | "
            f"{'yes' if loads['same'] else '**no**'} |"
        )
    return [*lines, "", *[f"- {note}" for note in result.notes]]

"""The Markdown report: measured numbers only, verdicts computed from them."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from .core import ROOT, percentile
from .decision import DecisionRow, summary
from .live import (
    CHANGE_TIMEOUT,
    DASHBOARD_TARGET_MS,
    LATENCY_TARGET_MS,
    LatencyResult,
    PageRun,
    slow_queries,
)
from .simulate import SimRow

SIMULATE_TARGET = (1_000_000, 60.0)  # jobs, seconds
DECISION_TARGET = (100_000, 1000.0)  # queued jobs, microseconds


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out.stdout.strip()


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def header(
    seed: int, args: str, load_before: float, *, live: bool = False, engine: bool = False
) -> list[str]:
    dirty = _git("status", "--porcelain", "--", "scheduler")
    commit = _git("rev-parse", "--short", "HEAD") + (" (scheduler/ modified)" if dirty else "")
    scenarios = (
        f"- data: `scheduler.demo.demo_load()` plus generated history (`bench.live_child`), "
        f"seed {seed}; 3 backends"
        if live
        else "- data: 8 backends each running a 10-hour job, the `bench.generate` instance "
        "tree, queues filled by the leader (`bench.engine_child`)"
        if engine
        else f"- scenarios: `bench.generate`, seed {seed}, 8 backends, 20 instances in 4 hubs"
    )
    title = "live dashboard" if live else "live engine" if engine else ""
    return [
        f"# qdash {title} benchmarks".replace("  ", " "),
        "",
        f"- run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `python -m bench {args}`".rstrip(),
        f"- code: commit {commit}",
        f"- machine: {_cpu()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{platform.system()}; 1-min load average {load_before:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end (other work on the machine skews timings)",
        scenarios,
        "",
    ]


def write_report(lines: list[str], out: Path) -> None:
    """Every report, timings and acceptance runs alike: printed, and written to `out`."""
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print()
    print(text)
    print(f"(written to {os.path.relpath(out)})")


def _num(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def simulate_table(rows: list[SimRow]) -> list[str]:
    lines = [
        "## simulate: `manage.py simulate` end to end, one fresh process per run",
        "",
        "| engine | jobs | wall s | jobs/s | load s | run s | dump s | peak RSS MB "
        "| busy % mean / max backend | queued mean / max | trace = memory | notes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|---|",
    ]
    for row in rows:
        if row.run is None:
            lines.append(f"| {row.engine} | {row.jobs:,} | | | | | | | | | | {row.note} |")
            continue
        r = row.run.result
        notes = [row.note] if row.note else []
        if r.get("db_setup"):
            notes.append(f"wall includes {r['db_setup']:.1f} s scratch database create + drop")
        stats = row.stats
        busy = f"{stats.busy_mean:.1%} / {stats.busy_max:.1%}" if stats else ""
        queue = f"{stats.queue_mean:.0f} / {stats.queue_max}" if stats else ""
        same = "" if row.same_as_memory is None else ("yes" if row.same_as_memory else "**NO**")
        lines.append(
            f"| {row.engine} | {row.jobs:,} | {_num(r['wall'])} | {_num(row.jobs / r['wall'], 0)} "
            f"| {_num(r['load'])} | {_num(r['run'])} | {_num(r['dump'])} "
            f"| {_num(row.run.peak_rss_mb, 0)} | {busy} | {queue} | {same} | {'; '.join(notes)} |"
        )
    lines += [
        "",
        "wall = load + run + dump, timed inside the child as `manage.py simulate` runs them "
        "(interpreter and Django start-up excluded"
        + _startup_note(rows)
        + "). Peak RSS: the child's VmHWM at exit (whole process"
        + _baseline_note(rows)
        + "; not `ru_maxrss`, which Linux seeds with the parent's size across fork and exec). "
        "busy % and queued are measured from the memory trace over [0, last arrival]: the "
        "fraction of time each backend ran a job, and the time-averaged / largest number "
        "of queued jobs (all backends). trace = memory: the db trace equals the memory "
        "trace of the same scenario (as parsed JSON).",
        "",
    ]
    return lines


def _startup_note(rows: list[SimRow]) -> str:
    runs = [row.run for row in rows if row.run is not None and row.engine == "memory"]
    if not runs:
        return ""
    smallest = min(runs, key=lambda run: run.result["wall"])
    return f"; it took {smallest.wall - smallest.result['wall']:.1f} s per process here"


def _baseline_note(rows: list[SimRow]) -> str:
    runs = [row.run for row in rows if row.run is not None]
    if not runs:
        return ""
    baseline = min(run.result.get("baseline_rss_mb", 0.0) for run in runs)
    return f", {baseline:.0f} MB of it after start-up"


def decision_table(rows: list[DecisionRow]) -> list[str]:
    lines = [
        "## decision: one scheduling decision with N jobs queued",
        "",
        "| queued jobs | open sessions with queued jobs | policy median µs | policy p95 µs "
        "| cold-cache median µs | cold-cache p95 µs | naive rescan median µs | naive p95 µs "
        "| naive / policy (median) | picks by lane (both passes) |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        p50, p95 = summary(row.policy_us)
        c50, c95 = summary(row.cold_us)
        n50, n95 = summary(row.naive_us)
        lanes = ", ".join(f"{lane} {count}" for lane, count in sorted(row.lanes.items()))
        lines.append(
            f"| {row.queued:,} | {row.sessions:,} | {_num(p50, 1)} | {_num(p95, 1)} "
            f"| {_num(c50, 1)} | {_num(c95, 1)} | {_num(n50, 1)} | {_num(n95, 1)} "
            f"| {_num(n50 / p50, 0)}× | {lanes} |"
        )
    reps = len(rows[0].policy_us) if rows else 0
    lines += [
        "",
        f"policy: one `Policy.run_instant(t, [SetBackendStatus(b, online)])` with all 8 "
        "backends paused and N jobs queued (a fifth in open sessions); it picks one job "
        f"through the lanes and starts it. {reps} repetitions cycling over the backends, each "
        "followed (untimed) by cancelling the started job and its session, pausing again and "
        "submitting replacements, so every pick sees exactly N queued jobs. cold-cache: the "
        "same, each pick right after streaming 64 MiB through memory (as when other work ran "
        "since the last decision). naive rescan: `bench.decision.naive_pick`, the backend's "
        "oldest queued job by a scan of every job, on the same queue. Each pass runs apart "
        "(interleaving the rescan would evict the policy's data by an amount growing with N).",
        "",
    ]
    return lines


def verdicts(sim_rows: list[SimRow], decision_rows: list[DecisionRow]) -> list[str]:
    lines = ["## targets", ""]
    jobs, limit = SIMULATE_TARGET
    sim = [r for r in sim_rows if r.engine == "memory" and r.jobs == jobs and r.run is not None]
    if sim:
        wall = sim[0].run.result["wall"] if sim[0].run else 0.0
        met = "met" if wall < limit else "**not met**"
        lines.append(f"- {jobs:,} jobs simulated in under {limit:.0f} s: {wall:.1f} s, {met}")
    queued, budget = DECISION_TARGET
    dec = [r for r in decision_rows if r.queued == queued]
    if dec:
        p50, p95 = summary(dec[0].policy_us)
        c50, c95 = summary(dec[0].cold_us)
        met = "met" if max(p95, c95) < budget else "**not met**"
        lines.append(
            f"- one decision with {queued:,} queued under {budget:.0f} µs: "
            f"median {p50:.1f} µs, p95 {p95:.1f} µs (cold caches: median {c50:.1f} µs, "
            f"p95 {c95:.1f} µs), {met}"
        )
    if len(lines) == 2:
        lines.append("- not measured in this run (needs 1M simulate and 100k decision)")
    return [*lines, ""]


# ------------------------------------------------------------ live dashboard
def live_verdicts(
    latency: LatencyResult | None,
    page_runs: list[tuple[int, PageRun]],
    fanout: LatencyResult | None = None,
) -> list[str]:
    lines = ["## targets", ""]
    for measured in (latency, fanout):
        if measured is None or not measured.latencies_ms:
            continue
        p95 = percentile(measured.latencies_ms, 95)
        met = "met" if p95 < LATENCY_TARGET_MS and not measured.missing else "**not met**"
        where = f"{measured.web_processes} web process" + (
            "es" if measured.web_processes > 1 else ""
        )
        lines.append(
            f"- update latency with {measured.clients} websocket clients on {where}, p95 under "
            f"{LATENCY_TARGET_MS:.0f} ms and none missing: {p95:,.0f} ms, "
            f"{measured.missing} missing, {met}"
        )
    for n_jobs, run in page_runs:
        page = _page(run, "dashboard")
        if page is None or "ms" not in page:
            continue
        p50 = median(page["ms"])
        met = "met" if p50 < DASHBOARD_TARGET_MS else "**not met**"
        lines.append(
            f"- dashboard `/` with {n_jobs:,} finished jobs ({run.engine}) under "
            f"{DASHBOARD_TARGET_MS:.0f} ms: median {p50:,.0f} ms, "
            f"p95 {percentile(page['ms'], 95):,.0f} ms, {met}"
        )
    if len(lines) == 2:
        lines.append("- not measured in this run")
    return [*lines, ""]


def _page(run: PageRun, prefix: str) -> dict | None:
    return next((p for p in run.result.get("pages", []) if p["label"].startswith(prefix)), None)


def latency_table(r: LatencyResult) -> list[str]:
    where = "one web process" if r.web_processes == 1 else f"{r.web_processes} web processes"
    lines = [
        f"## live: update latency, {r.clients} websocket clients on `/ws/live`, {where}",
        "",
    ]
    if not r.latencies_ms:
        return [*lines, f"not measured: {r.note or 'no change reached any client'}", ""]
    p50, p95 = percentile(r.latencies_ms, 50), percentile(r.latencies_ms, 95)
    kb = 1024
    lines += [
        "| clients (with first fragments) | failed connects, retried | drops "
        "| changes | pairs received | missing | p50 ms | p95 ms | max ms "
        "| first client, median ms | last client, median ms | connect + first fragments s "
        "| messages / client on connect | KB / client on connect "
        "| messages / client per change | KB / client per change |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        f"| {r.clients} ({r.ready}) | {r.failed_connects} | {r.drops} | {r.changes} "
        f"| {len(r.latencies_ms):,} | {r.missing} "
        f"| {_num(p50, 0)} | {_num(p95, 0)} | {_num(max(r.latencies_ms), 0)} "
        f"| {_num(median(r.per_change_min_ms), 0)} | {_num(median(r.per_change_max_ms), 0)} "
        f"| {_num(r.connect_s, 1)} | {_num(median(r.initial_messages), 0)} "
        f"| {_num(median(r.initial_bytes) / kb, 1)} "
        f"| {_num(median(r.change_messages) / r.changes, 1)} "
        f"| {_num(median(r.change_bytes) / r.changes / kb, 1)} |",
        "",
        (
            "`manage.py serve --no-scheduler` (daphne, one process) on a scratch SQLite database "
            if r.web_processes == 1
            else f"The cluster of `deploy/supervisord.conf`: {r.web_processes} daphne processes "
            "on one port, a listening socket each (`SO_REUSEPORT`, `qdash/web.py`; the kernel "
            "spreads the connections by a hash of their addresses; websockets per process as "
            "they reported: "
            + (" / ".join(str(n) for n in r.per_process) or "not read")
            + "), a scheduler leader and an executor worker, on a scratch PostgreSQL database "
        )
        + "after `demo_load()`, with the Redis channel layer "
        f"({r.layer or '?'}; the in-memory layer cannot carry a change committed by another "
        f"process). {r.clients} clients (the `websockets` library, one asyncio process, no "
        "compression) log in with a `sessionid` cookie of the staff user `admin` and wait "
        "for their page's fragments, reconnecting after a close with exponential backoff "
        "as the page's htmx websocket does (failed connects: closes before the first "
        "fragments; drops: closes after; pairs are counted over the clients that had their "
        "fragments when the changes began). Then one job at a time is submitted by "
        "`scheduler.submission.jobs_submit` in another process; latency is from the "
        "submission's commit (a wall-clock stamp taken once `jobs_submit` returns, before "
        "the leader's step) to each client receiving the message that names the "
        "new job (the job table). The next change waits until every client has it "
        f"(or {CHANGE_TIMEOUT:.0f} s) plus the gap, so changes never queue behind each other. "
        "first / last client: per change, the earliest and the latest client's latency. "
        "Messages and KB per change: everything a client received in the change phase, "
        "divided by the changes (KB of text frames). Client, server, Redis and the "
        "submitter share this machine's CPUs." + (f" Note: {r.note}." if r.note else ""),
        "",
    ]
    return lines


def pages_sections(page_runs: list[tuple[int, PageRun]], outdir: Path) -> list[str]:
    if not page_runs:
        return []
    lines = [
        "## live: page server time with a large history",
        "",
        "| finished jobs | database | page | median ms | p95 ms | max ms | queries "
        "| SQL ms incl. fetch (sum) | slowest query ms |",
        "|--:|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    details: list[str] = []
    for n_jobs, run in page_runs:
        if not run.result:
            lines.append(f"| {n_jobs:,} | {run.engine} | | | | | | | {run.note} |")
            continue
        for page in run.result["pages"]:
            if "ms" not in page:
                lines.append(
                    f"| {n_jobs:,} | {run.engine} | {page['label']} | | | | | | "
                    f"failed: {page.get('error', '?')} |"
                )
                continue
            sql = [ms if replay is None else replay for _, ms, replay, _ in page["queries"]]
            lines.append(
                f"| {n_jobs:,} | {run.engine} | {page['label']} | {_num(median(page['ms']), 1)} "
                f"| {_num(percentile(page['ms'], 95), 1)} | {_num(max(page['ms']), 1)} "
                f"| {len(sql)} | {_num(sum(sql), 1)} | {_num(max(sql, default=0.0), 1)} |"
            )
            slug = f"{run.engine.replace('/', '-')}-{n_jobs}-{_slug(page['label'])}"
            target = outdir / f"profile-live-{slug}.txt"
            target.write_text(_page_profile(page))
            if median(page["ms"]) >= DASHBOARD_TARGET_MS and "websocket" not in page["label"]:
                details += _slow_page(n_jobs, run, page, target)
    counts = ", ".join(f"{v:,} {k}" for k, v in page_runs[0][1].result.get("counts", {}).items())
    fills = ", ".join(
        f"{run.engine} {run.result['fill_s']:.0f} s" for _, run in page_runs if run.result
    )
    lines += [
        "",
        f"Data ({counts}): `demo_load()`, then bulk_create of finished jobs spread over "
        "the last 7 days (completed / failed / cancelled 90 / 5 / 5 %, one in ten in a "
        "closed session) with their `job_submitted` / `job_started` / `job_ended` events and "
        "run charges, then queued jobs in the last half hour and one running job per "
        f"backend (fill time, not counted: {fills}). Server time: the Django test client "
        "logged in as the staff user, DEBUG off, each page requested once to warm up and "
        "then timed; the job table partial is `/` with `HX-Request`. The websocket rows "
        "time `consumers.pages.render_page` as the consumer calls it (on connect, and for one "
        "submitted job). Queries: one further request under `CaptureQueriesContext`; "
        "cProfile of three more requests in artifacts/profile-live-*.txt.",
        "",
        *details,
    ]
    return lines


def _slug(label: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in label.split("(")[0].split("`")[0])
    return "-".join(words.split())


def _page_profile(page: dict) -> str:
    queries = "\n".join(
        f"{ms:9.1f} ms (execute {execute:.1f} ms), {rows} rows  {sql}"
        for ms, execute, rows, sql in slow_queries(page, 20)
    )
    return f"{page.get('profile', '')}\n### slowest queries of one request\n{queries}\n"


def _slow_page(n_jobs: int, run: PageRun, page: dict, profile_path: Path) -> list[str]:
    """Where the over-target dashboard spends its time: top functions and slowest SQL."""
    profile = page.get("profile", "")
    lines = [
        f"### over {DASHBOARD_TARGET_MS:.0f} ms: {page['label']}, {n_jobs:,} jobs, {run.engine}",
        "",
        f"Top scheduler functions by cumulative time (cProfile, 3 requests; all in "
        f"{os.path.relpath(profile_path)}):",
        "",
        "```",
        *_listing(profile, "scheduler functions by cumulative"),
        "```",
        "",
        "Top functions by own time:",
        "",
        "```",
        *_listing(profile, "by tottime"),
        "```",
        "",
        "Slowest queries of one request (replayed with every row fetched):",
        "",
        "| ms incl. fetch | execute ms | rows | SQL |",
        "|--:|--:|--:|---|",
    ]
    for ms, execute, rows, sql in slow_queries(page):
        short = sql if len(sql) <= 400 else sql[:400] + " …"
        escaped = short.replace("|", "\\|")
        lines.append(f"| {ms:.1f} | {execute:.1f} | {rows:,} | `{escaped}` |")
    return [*lines, ""]


def _listing(profile: str, section: str, limit: int = 15) -> list[str]:
    """The column header and first `limit` rows of one section of a profile text."""
    part = profile.split(section, 1)[-1].split("### ", 1)[0].splitlines()
    start = next((i for i, line in enumerate(part) if "ncalls" in line), None)
    if start is None:
        return []
    return [line.rstrip() for line in part[start : start + 1 + limit] if line.strip()]

"""The fuzz run's report: cases and findings per operation and per decoder."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from tests.acceptance.fuzz.config import LIMITS, FuzzResult, Tally


def report(result: FuzzResult, command: str) -> list[str]:
    ops = result.operations
    total = _sum(ops.values())
    linked = sum(tally.stateful for tally in ops.values())
    decoders = result.decoders
    examples = sum(d["examples"] for d in decoders.values())
    unexpected = sum(d["unexpected"] for d in decoders.values())
    met = total.server_errors == 0 and total.violations == 0 and unexpected == 0
    if result.hostile is not None:
        met = met and not result.hostile.past_cap and not _hostile_errors(result.hostile)
    lines = [
        "# qdash fuzz benchmark",
        "",
        f"`python -m bench {command}` · {os.cpu_count()} CPUs · API part "
        f"{result.api_seconds:.0f} s, decoders {result.decoder_seconds:.0f} s",
        "",
        f"**{total.cases:,} API cases ({linked:,} of them in {result.scenarios} stateful "
        "scenarios following the schema's links): "
        f"{total.server_errors} server errors, {total.violations} schema violations; "
        f"{examples:,} decoder examples: {unexpected} unexpected exceptions. Target 0 / 0 / 0: "
        f"{'met' if met else 'NOT met'}.**",
        "",
        f"`manage.py serve --demo` on a scratch SQLite database, port {result.port}; every "
        "request as the demo researcher alice with an API key. Raised for the run: "
        + ", ".join(f"`{name}={value}`" for name, value in LIMITS.items())
        + f". 429 answers anyway: {sum(total.throttled.values())}"
        + (f" ({_codes(total.throttled)})" if total.throttled else "")
        + f". Transport errors: {total.transport_errors}. Server alive afterwards: "
        f"{'yes' if result.alive_after else 'NO'}; server errors in its log: "
        f"{result.logged_server_errors}.",
        "",
        "## API (schemathesis)",
        "",
        "| operation | cases | stateful | 2xx | 4xx | 429 | 5xx | schema violations |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in sorted(ops, key=lambda text: (text.split()[1], text.split()[0])):
        lines.append(_row(f"`{label}`", ops[label]))
    lines.append(_row("**total**", total))
    lines += [
        "",
        "## Decoders (hypothesis)",
        "",
        "| decoder | examples | refused cleanly | accepted | unexpected exceptions |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in decoders.values():
        lines.append(
            f"| {row['what']} | {row['examples']:,} | {row['refused']:,} | {row['accepted']:,} "
            f"| {row['unexpected']} |"
        )
    lines.append(
        f"| **total** | {examples:,} | {sum(d['refused'] for d in decoders.values()):,} "
        f"| {sum(d['accepted'] for d in decoders.values()):,} | {unexpected} |"
    )
    if result.hostile is not None:
        lines += hostile_section(result.hostile)
    found = [(label, text) for label, tally in ops.items() for text in tally.examples]
    found += [(name, text) for name, row in decoders.items() for text in row["failures"]]
    if found:
        lines += ["", "## Failures (first few of each)", ""]
        lines += [f"- {label}: `{text}`" for label, text in found]
    lines.append("")
    return lines


def _sum(tallies: Any) -> Tally:
    total = Tally()
    for tally in tallies:
        total.cases += tally.cases
        total.stateful += tally.stateful
        total.statuses.update(tally.statuses)
        total.server_errors += tally.server_errors
        total.violations += tally.violations
        total.throttled.update(tally.throttled)
        total.transport_errors += tally.transport_errors
    return total


def _row(label: str, tally: Tally) -> str:
    def between(low: int, high: int) -> int:
        return sum(n for status, n in tally.statuses.items() if low <= status < high)

    return (
        f"| {label} | {tally.cases:,} | {tally.stateful:,} | {between(200, 300):,} "
        f"| {between(400, 500):,} | {tally.statuses[429]:,} | {tally.server_errors} "
        f"| {tally.violations} |"
    )


def _codes(counts: Counter[str]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in counts.most_common())


def _hostile_errors(hostile: Any) -> int:
    return sum(n for t in hostile.shapes.values() for code, n in t.statuses.items() if code >= 500)


def hostile_section(hostile: Any) -> list[str]:
    """The hostile programs: how each shape was answered, and the executions' caps."""
    from tests.acceptance.fuzz.hostile import CAPS, GRACE_SECONDS

    probes = sorted(hostile.healthz) or [0.0]
    lines = [
        "",
        "## Hostile programs (`POST /jobs`, then run under the caps)",
        "",
        f"Caps for the run: {', '.join(f'`{k}={v}`' for k, v in CAPS.items())}. "
        f"**{_hostile_errors(hostile)} server errors; {len(hostile.past_cap)} of "
        f"{hostile.executions} executions past their caps** (longer than the wall-clock cap "
        f"plus {GRACE_SECONDS:g} s to kill and report; the longest took "
        f"{hostile.longest:.1f} s). Accepted jobs still unfinished at the end: "
        f"{hostile.unsettled}. `/healthz` throughout: {len(probes)} probes, p50 "
        f"{probes[len(probes) // 2] * 1000:.0f} ms, max {probes[-1] * 1000:.0f} ms.",
        "",
        "| shape | sent | 201 | 4xx | 5xx | accepted jobs ended as |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for shape, tally in hostile.shapes.items():
        statuses = tally.statuses
        fourxx = sum(n for code, n in statuses.items() if 400 <= code < 500)
        fivexx = sum(n for code, n in statuses.items() if code >= 500)
        ended = ", ".join(f"{what}: {n}" for what, n in tally.final.most_common()) or "-"
        lines.append(
            f"| {shape} | {tally.sent} | {statuses[201]} | {fourxx} | {fivexx} | {ended} |"
        )
    if hostile.past_cap:
        lines += ["", "Past their caps: " + ", ".join(hostile.past_cap[:10])]
    return lines

"""The what-if answer in words: spans of seconds, waits, session fates (page and CLI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from scheduler.policy import model as m


def span(seconds: float | None) -> str:
    """`2h 05m`, `3m 20s`, `12.5s`; a dash for no value."""
    if seconds is None:
        return "—"
    sign = "−" if seconds < 0 else ""
    value = abs(seconds)
    if value >= 3600:
        hours, rest = divmod(round(value), 3600)
        return f"{sign}{hours}h {rest // 60:02d}m"
    if value >= 60:
        minutes, rest = divmod(round(value), 60)
        return f"{sign}{minutes}m {rest:02d}s"
    return f"{sign}{value:.3g}s"


def item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)


def signed_span(seconds: float) -> str:
    """A difference of spans: `+2h 05m`, `−40s`, `0`."""
    if not seconds:
        return "0"
    return span(seconds) if seconds < 0 else f"+{span(seconds)}"


def signed(value: int) -> str:
    return f"+{value}" if value > 0 else str(value)


def percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def wait(stats: dict[str, Any], which: str) -> str:
    """A wait percentile (`p50`, `p95`), with `≥` when a job still queued bounds it."""
    value = stats[which]
    if value is None:
        return "—"
    return f"{'≥ ' if stats[f'{which}_at_least'] else ''}{span(value)}"


def _at(moment: datetime | None) -> str:
    return "" if moment is None else timezone.localtime(moment).strftime("%H:%M:%S")


def fate(run: dict[str, Any]) -> str:
    """What happens to a session in one future, in words."""
    parts = []
    if run["bound"]:
        parts.append(f"bound to window {run['bound']} at {_at(run['bound_at'])}")
    reason = run["closed_reason"]
    if reason == m.CLOSED_RESERVATION_ENDED:
        cut = ""
        if run["ttl_deadline"] is not None and run["closed_at"] < run["ttl_deadline"]:
            cut = f", before its max TTL at {_at(run['ttl_deadline'])}"
        parts.append(f"closed at window end {_at(run['closed_at'])}{cut}")
    elif reason == m.CLOSED_EXPIRED:
        parts.append(f"hits its max TTL at {_at(run['closed_at'])}")
    elif reason:
        parts.append(f"closes ({reason}) at {_at(run['closed_at'])}")
    return "; ".join(parts) or "runs on"

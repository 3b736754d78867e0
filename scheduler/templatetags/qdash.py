"""Template filters of the qdash pages."""

from __future__ import annotations

from typing import Any

from django import template

from scheduler.clock import ticks_span

register = template.Library()

# Event details that are spans of clock ticks, not plain numbers.
TICK_SPANS = {"max_ttl"}


@register.filter
def event_detail(detail: dict[str, Any]) -> str:
    """An event's details for people: `key=value` pairs, spans as durations, no empty values."""
    parts = []
    for key, value in detail.items():
        if value is None or value == "":
            continue
        if key in TICK_SPANS and isinstance(value, int):
            value = duration(ticks_span(value))
        parts.append(f"{key.replace('_', ' ')}={value}")
    return " ".join(parts)


def duration(span: Any) -> str:
    """`8h 0m 5s`, `3m 0s`, `12s`."""
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


@register.filter
def age(span: Any) -> str:
    """How long ago, to a tenth of a second under a minute: `1.4s`, `3m 0s`."""
    if span is None:
        return ""
    seconds = span.total_seconds()
    return f"{seconds:.1f}s" if seconds < 60 else duration(span)


LANE_WORDS = {"reservation": "reservation", "session": "session", "fair_share": "fair-share"}


@register.simple_tag
def lane_label(lane: str | None) -> str:
    """A lane's name for people ("fair-share")."""
    return LANE_WORDS.get(lane or "", lane or "")


@register.filter
def shown_to(path: str | None, visible: frozenset[str] | None) -> bool:
    """`{% if path|shown_to:visible %}`: the viewer sees this instance's things by name."""
    from scheduler.selectors.access import shown

    return shown(path, visible)

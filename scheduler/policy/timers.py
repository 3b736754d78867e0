"""A new session's timers, as the rules set them (docs/rules.md, "Sessions").

The policy sets them when it creates a session, and a web process when it stores
the session's row before the leader applies it: both call these, so the two
never disagree.
"""

from __future__ import annotations

from .model import BATCH, Settings


def interactive_ttl(settings: Settings, mode: str) -> int:
    """A session's interactive timeout: a batch has its own (short) one."""
    return settings.batch_interactive_ttl if mode == BATCH else settings.interactive_ttl


def capped_max_ttl(settings: Settings, requested: int | None) -> int | None:
    """The max TTL asked for at creation, capped at the system limit (None: not yet known)."""
    return None if requested is None else min(settings.system_max_ttl, requested)


def max_ttl(settings: Settings, requested: int | None) -> int:
    """The max TTL that `requested` fixes: capped at the system limit, which is also
    what a request of nothing fixes."""
    return settings.system_max_ttl if requested is None else min(settings.system_max_ttl, requested)


def open_deadline(settings: Settings, created_at: int) -> int:
    """When a session still `open` with no job queued closes."""
    return created_at + settings.open_timeout

"""The page router: which fragments each page needs after a change."""

from __future__ import annotations

from typing import Any

from scheduler import fragments, selectors


def render_page(
    *, page: str, uid: str, user: Any, filters: dict[str, str], change: dict[str, Any] | None
) -> list[str]:
    """The messages a page needs after `change` (None: everything, as on connect)."""
    if page == "dashboard":
        if change is None:
            html = fragments.dashboard_fragments(
                user=user, filters=filters, backends=None, jobs=True
            )
            cards = selectors.backend_cards()
            return [*_one(html), fragments.to_json(fragments.charts(cards=cards, user=user))]
        if change.get("plan"):  # only the cards whose jobs held back by allocations changed
            held = change.get("held") or []
            if not held:
                return []
            return _one(
                fragments.dashboard_fragments(user=user, filters=filters, backends=held, jobs=False)
            )
        messages = _one(
            fragments.dashboard_fragments(
                user=user, filters=filters, backends=change["backends"], jobs=bool(change["jobs"])
            )
        )
        if change["backends"]:
            messages.append(fragments.depth_points(backends=change["backends"], at=change["at"]))
        if change["sessions"]:
            messages.append(fragments.timeline_message(user=user))
        return messages
    if page == "job":
        # A queued job's place moves with every new plan; its status with its own changes.
        if change is None or uid in change["jobs"]:
            status = fragments.job_fragment(uid=uid, user=user)
        elif change.get("plan"):
            status = fragments.job_fragment(uid=uid, user=user, queued=True)
        else:
            status = None
        return [status] if status else []
    if page == "session":
        if change is None or uid in change["sessions"]:
            return fragments.session_fragments(uid=uid, user=user)
        return []
    if change is None or change["jobs"] or change.get("plan"):
        return [fragments.fair_share_fragment(user=user)]
    return []


def _one(html: list[str]) -> list[str]:
    """HTML fragments as one message: htmx swaps each of its elements by id, and one
    frame per socket costs a server with many sockets far less than several."""
    return ["\n".join(html)] if html else []

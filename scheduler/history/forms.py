"""The usage report's input: a span of UTC days, day or week, maybe one instance."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django import forms

from scheduler.history.report import BY

DEFAULT_DAYS = 30
MAX_DAYS = 3_660  # ten years: a span longer than this is a mistake


def default_span(today: date | None = None) -> tuple[date, date]:
    until = today or datetime.now(UTC).date()
    return until - timedelta(days=DEFAULT_DAYS - 1), until


def span_error(since: date, until: date) -> str | None:
    """Why a span is refused (None: it is fine); the page and the command share it."""
    if since > until:
        return f"since ({since}) is after until ({until})"
    if (until - since).days + 1 > MAX_DAYS:
        return f"the span is longer than {MAX_DAYS} days"
    return None


class UsageForm(forms.Form):
    since = forms.DateField(
        input_formats=["%Y-%m-%d"], widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        input_formats=["%Y-%m-%d"], widget=forms.DateInput(attrs={"type": "date"})
    )
    by = forms.ChoiceField(choices=[(b, b) for b in BY])
    instance = forms.CharField(required=False, max_length=200)

    def __init__(self, data: dict | None, *, choices: list[str]) -> None:
        since, until = default_span()
        given = {k: v for k, v in (data or {}).items() if v not in ("", None)}
        super().__init__({"since": since, "until": until, "by": "day", **given})
        self.fields["instance"].widget = forms.Select(
            choices=[("", "every instance")] + [(path, path) for path in choices]
        )

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since is not None and until is not None and (error := span_error(since, until)):
            raise forms.ValidationError(error)
        return cleaned

"""Template filters of the what-if page (`scheduler.whatif.words`)."""

from __future__ import annotations

from django import template

from scheduler.whatif import words

register = template.Library()

for name in ("span", "signed_span", "signed", "percent", "wait", "fate", "item"):
    register.filter(name, getattr(words, name))

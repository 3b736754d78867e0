"""The Django and browser sides of the chaos run (started by its harness).

Subcommands (the database comes from DATABASE_URL):

- `setup --backends N --result R`: migrate a fresh database; N fast backends,
  instances in three hubs with their shares, one API key per project, a
  reservation window, and a logged-in operator session; writes them as JSON.
- `browser --url U --sessionid S --stop FILE --result R`: Debian's chromium on the
  dashboard until FILE exists; writes when its websocket opened and closed and
  when each live update arrived (wall clock, seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

HUBS = {"hubA/g1/p": 1.0, "hubA/g2/p": 1.0, "hubB/g/p": 2.0, "hubC/g/p": 1.0, "hubR/g/p": 1.0}
RESERVED = "hubR/g/p"  # the reservation window's instance


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.acceptance.chaos.child")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup")
    setup.add_argument("--backends", type=int, default=8)
    setup.add_argument("--job-seconds", type=float, default=0.1)
    setup.add_argument("--window", type=float, nargs=2, default=(60.0, 120.0))
    setup.add_argument("--result", required=True)
    browser = sub.add_parser("browser")
    browser.add_argument("--url", required=True)
    browser.add_argument("--sessionid", required=True)
    browser.add_argument("--stop", required=True)
    browser.add_argument("--result", required=True)
    args = parser.parse_args()
    if args.command == "setup":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
        import django

        django.setup()
        result = _setup(args.backends, args.job_seconds, args.window)
    else:
        result = _browser(args.url, args.sessionid, Path(args.stop))
    Path(args.result).write_text(json.dumps(result))


def _setup(n_backends: int, job_seconds: float, window: tuple[float, float]) -> dict[str, Any]:
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.utils import timezone

    from scheduler import models
    from scheduler.auth_tokens import tokens_issue
    from scheduler.services import instances_ensure

    call_command("migrate", interactive=False, verbosity=0)
    backends = []
    for i in range(n_backends):
        backend, _ = models.Backend.objects.update_or_create(
            name=f"chaos_{i}",
            defaults={
                "job_overhead": timedelta(seconds=job_seconds),
                "shot_time": timedelta(microseconds=10),
                "num_qubits": 5,
            },
        )
        backends.append(backend.name)
    users = get_user_model()
    keys = {}
    for n, (path, share) in enumerate(HUBS.items()):
        node = instances_ensure(path=path)
        hub = models.Instance.objects.get(path=path.split("/")[0])
        hub.share = share
        hub.save(update_fields=["share"])
        user, _ = users.objects.get_or_create(username=f"chaos{n}")
        node.members.add(user)
        keys[path] = tokens_issue(user=user, name="chaos")[1]
    now = timezone.now()
    models.Reservation.objects.create(
        backend=models.Backend.objects.get(name=backends[0]),
        instance=models.Instance.objects.get(path=RESERVED),
        start=now + timedelta(seconds=window[0]),
        end=now + timedelta(seconds=window[1]),
        exclusive=True,
    )
    operator, _ = users.objects.get_or_create(
        username="chaos-operator", defaults={"is_staff": True, "is_superuser": True}
    )
    store = SessionStore()
    store[SESSION_KEY] = str(operator.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = operator.get_session_auth_hash()
    store.create()
    return {"backends": backends, "keys": keys, "sessionid": store.session_key}


# Records the htmx websocket's life and every live update, in the page.
RECORDER = """
window.chaos = {opened: [], closed: [], messages: []};
document.body.addEventListener('htmx:wsOpen', () => chaos.opened.push(Date.now() / 1000));
document.body.addEventListener('htmx:wsClose', () => chaos.closed.push(Date.now() / 1000));
document.body.addEventListener('htmx:wsAfterMessage', () => chaos.messages.push(Date.now() / 1000));
"""


def _browser(url: str, sessionid: str, stop: Path) -> dict[str, Any]:
    from urllib.parse import urlsplit

    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        context = browser.new_context()
        host = urlsplit(url).hostname or "127.0.0.1"
        context.add_cookies(
            [{"name": "sessionid", "value": sessionid, "domain": host, "path": "/"}]
        )
        page = context.new_page()
        page.add_init_script(
            f"document.addEventListener('DOMContentLoaded', () => {{ {RECORDER} }});"
        )
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url, wait_until="domcontentloaded", timeout=180_000)  # a busy machine
        while not stop.exists():
            page.wait_for_timeout(500)
        recorded = page.evaluate("window.chaos")
        browser.close()
    return {**recorded, "errors": errors, "at": time.time()}


if __name__ == "__main__":
    main()

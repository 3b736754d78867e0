"""`manage.py issue_token --user NAME [--json]`: create an API key for the REST API."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.api.auth import instance_crn, member_projects
from scheduler.auth_tokens import tokens_issue


class Command(BaseCommand):
    help = "Create an API key; --json also prints the URLs and instance CRNs the client needs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--name", default="", help="a label for the key")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        _, key = tokens_issue(user=user, name=options["name"])
        base = f"http://{options['host']}:{options['port']}"
        instances = [
            {"name": node.path, "crn": instance_crn(node.path)} for node in member_projects(user)
        ]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "token": key,
                        "url": f"{base}/experimental/api/v1",
                        "iam_url": base,
                        "instances": instances,
                    }
                )
            )
            return
        self.stdout.write(f"API key (shown once): {key}")
        self.stdout.write(f"url: {base}/experimental/api/v1   IAM_URL: {base}")
        for item in instances:
            self.stdout.write(f"instance {item['name']}: {item['crn']}")
        if not instances:
            self.stdout.write("The user is a member of no project instance yet.")

"""Argument errors of the operators' commands as one line and exit status 2."""

from __future__ import annotations

import sys
from typing import NoReturn

from django.core.management.base import CommandError, CommandParser


class OneLineParser(CommandParser):
    """`COMMAND: message` on stderr and exit status 2, without argparse's usage block
    (from the command line); a `CommandError` when called from code."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            words = self.prog.split()  # "manage.py allocation [set]"
            sys.stderr.write(f"{words[1] if len(words) > 1 else words[0]}: {message}\n")
            sys.exit(2)
        raise CommandError(f"Error: {message}")


def one_line_errors(parser: CommandParser) -> None:
    """Make `parser` (a command's, in `add_arguments`) report errors in one line."""
    parser.__class__ = OneLineParser

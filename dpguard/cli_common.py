"""What every `dpguard` subcommand shares: exit codes, the one-line usage error, the parser that
raises it, and writing a report. Imports run one way: cli.py and the subcommand modules
(audit/cli.py, audit/access_review/command.py, response/*_cli.py) import this module, never each other."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CLEAN, EXIT_VIOLATIONS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad usage or input the user can fix: printed as one line, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for bad input
        raise UsageError(f"{self.prog}: {message} (see --help)")


def write(text: str, output: str | None) -> None:
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8", errors="replace")  # never half a report
        except OSError as e:
            raise UsageError(f"dpguard: cannot write {output}: {e.strerror or e}") from None
    else:
        sys.stdout.write(text)

"""Physical names made from construct paths, for resources whose name other settings must know
in advance (a key condition, a log group that a service writes to)."""
from __future__ import annotations

import re


def physical_name(path: str, limit: int = 80) -> str:
    """A name from a construct path: unique in the app, readable in the console, at most
    `limit` characters of letters, digits, `-` and `_` (the end of the path is kept)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", path).strip("-")
    return name[-limit:].lstrip("-_")

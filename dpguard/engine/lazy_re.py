"""Regular expressions compiled on first use.

Importing the catalogue imports every rule module, and a module-level `re.compile` runs at
import whether or not a scan meets the rule's resource types: the patterns of user-data scripts,
credential formats and ARNs cost about 3 ms of every start-up. A `LazyPattern` is written where
`re.compile` would be and used the same way (`.search`, `.finditer`, `.sub`, ...)."""
from __future__ import annotations

import re


class LazyPattern:
    __slots__ = ("_source", "_flags", "_compiled")

    def __init__(self, source: str | bytes, flags: int = 0):
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern | None = None

    def __getattr__(self, name: str):
        # only called for what the slots do not hold: the compiled pattern's methods
        if self._compiled is None:
            self._compiled = re.compile(self._source, self._flags)
        return getattr(self._compiled, name)

    def __repr__(self) -> str:
        return f"LazyPattern({self._source!r})"

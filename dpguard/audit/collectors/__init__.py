"""Collectors: each reads one service's resources of one account and region through boto3 and
writes them into a LiveTemplate as CloudFormation resources. They judge nothing."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from ..clients import Clients
from ..live import LiveTemplate

GLOBAL = "global"  # services with one endpoint per account (IAM); their resources land in region "global"


@dataclass(frozen=True)
class Collector:
    name: str
    collect: Callable[[Clients, str, LiveTemplate], None]
    scope: str  # "regional" or GLOBAL


_REGISTRY: dict[str, Collector] = {}


def collector(name: str, *, scope: str = "regional") -> Callable:
    def register(fn: Callable[[Clients, str, LiveTemplate], None]) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"collector {name!r} registered twice")
        _REGISTRY[name] = Collector(name, fn, scope)
        return fn
    return register


def collectors() -> list[Collector]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return sorted(_REGISTRY.values(), key=lambda c: c.name)

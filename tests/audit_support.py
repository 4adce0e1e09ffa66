"""Helpers of the audit-collector tests (tests/test_audit_collectors_network.py and _compute.py):
run some collectors through `audit(...)` with the real catalogue, or one collector alone to look
at the resources it writes."""
from __future__ import annotations

from dpguard.audit.clients import Clients
from dpguard.audit.collectors import collectors
from dpguard.audit.live import LiveTemplate
from dpguard.audit.run import audit

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account


def run(clients: Clients, *only: str):
    return audit([clients], [REGION], only=set(only))


def collect(clients: Clients, name: str) -> LiveTemplate:
    """One collector into a fresh live template, to look at the shapes it writes."""
    live = LiveTemplate(ACCOUNT, REGION)
    next(c for c in collectors() if c.name == name).collect(clients, REGION, live)
    return live

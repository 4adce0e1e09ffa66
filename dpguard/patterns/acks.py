"""Acknowledging one cdk-nag rule in every pack that has it: the packs name the same check
differently (`NIST.800.53.R5-S3DefaultEncryptionKMS`, `HIPAA.Security-...`), and a pattern
must pass whichever packs an app runs (cdk.json `dpguard.packs`)."""
from __future__ import annotations

from collections.abc import Iterable

from constructs import IConstruct

from ..cdk import acknowledge

NIST_R5, NIST_R4, HIPAA, PCI = "NIST.800.53.R5", "NIST.800.53.R4", "HIPAA.Security", "PCI.DSS.321"


def acknowledge_in_packs(scope: IConstruct, rule: str, packs: Iterable[str], reason: str) -> None:
    """Acknowledge `<pack>-<rule>` for each pack, with one reason. Acknowledging a rule of a
    pack the app does not run has no effect."""
    for pack in packs:
        acknowledge(scope, f"{pack}::{pack}-{rule}", reason)

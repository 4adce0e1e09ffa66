"""Which policy clause each cdk-nag rule supports, as the auditor report shows it.

The mapping is data (`nag_clauses.yaml` beside this module): cdk-nag rule id -> clause 1-11 for
the rules whose clause is clear; the other rules are listed as unmapped and get no clause."""
from __future__ import annotations

import functools
import re
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

DATA_FILE = Path(__file__).with_name("nag_clauses.yaml")
CLAUSES = range(1, 12)
# A cdk-nag rule id as CDK's validation report names it: `<pack name>-<rule>`, e.g.
# `AwsSolutions-IAM5`, `NIST.800.53.R5-S3DefaultEncryptionKMS`.
RULE_ID = re.compile(r"^(?P<pack>[A-Za-z][A-Za-z0-9.]*)-(?P<rule>[A-Za-z0-9]+)$")


def base_rule_id(rule_id: str) -> str:
    """The rule id without what cdk-nag and CDK add around it: a granular finding's suffix
    (`AwsSolutions-IAM5[Action::s3:*]`) and an acknowledgment's pack prefix
    (`AwsSolutions::AwsSolutions-IAM5`)."""
    rule = rule_id.partition("[")[0]
    return rule.rpartition("::")[2].strip()


def nag_clause(rule_id: str) -> int | None:
    """The policy clause a cdk-nag rule supports, or None when the rule is unmapped or unknown."""
    return nag_clauses().get(base_rule_id(rule_id))


@functools.cache
def nag_clauses() -> Mapping[str, int]:
    """Every mapped rule id -> clause, read from nag_clauses.yaml once and checked as it loads."""
    mapped, _ = _load(DATA_FILE)
    return MappingProxyType(mapped)


def _load(path: Path) -> tuple[dict[str, int], set[str]]:
    """(mapped rule id -> clause, unmapped rule ids). A malformed file fails loudly, naming the
    file and the entry, rather than leaving a rule silently without its clause."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def fail(problem: str) -> None:
        raise ValueError(f"{path}: {problem}")

    mapped: dict[str, int] = {}
    for pack, rules in (data.get("packs") or {}).items():
        for rule_id, clause in (rules or {}).items():
            _check_id(rule_id, pack, fail)
            if type(clause) is not int or clause not in CLAUSES:
                fail(f"{rule_id}: clause {clause!r} is not a number from 1 to 11")
            if rule_id in mapped:
                fail(f"{rule_id}: mapped twice")
            mapped[rule_id] = clause
    unmapped: set[str] = set()
    for pack, rules in (data.get("unmapped") or {}).items():
        for rule_id in rules or []:
            _check_id(rule_id, pack, fail)
            if rule_id in mapped or rule_id in unmapped:
                fail(f"{rule_id}: listed twice (mapped and unmapped, or twice unmapped)")
            unmapped.add(rule_id)
    return mapped, unmapped


def _check_id(rule_id: object, pack: str, fail) -> None:
    match = RULE_ID.match(rule_id) if isinstance(rule_id, str) else None
    if not match or match["pack"] != pack:
        fail(f"{rule_id!r} under pack {pack}: not a rule id of the form {pack}-<Rule>")

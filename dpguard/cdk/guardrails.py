"""Construct-level guardrails. They are CDK's own Aspects (run in JavaScript), so they cost no
Python callback per construct."""
from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from ..rules.governance import CLASSIFICATIONS, DATA_STORES

DEFAULT_PRIORITY = 0  # below CDK's default of 100: a tag set on the construct or stack wins


def default_data_tags(scope: IConstruct, classification: str | None, owner: str | None) -> None:
    """Tag every data store under `scope` that has no tag of its own with the configured
    `data-classification` and `data-owner`. Without configured defaults nothing is added and
    an untagged data store fails synth (DP-DataClassificationTag, DP-DataOwnerTag)."""
    types = [t for t, (tags_path, _) in DATA_STORES.items() if tags_path]
    if classification is not None:
        if classification not in CLASSIFICATIONS:
            raise ValueError(f"default data-classification must be one of {', '.join(CLASSIFICATIONS)}; "
                             f"got {classification!r}")
        cdk.Tags.of(scope).add("data-classification", classification, include_resource_types=types,
                               priority=DEFAULT_PRIORITY)
    if owner is not None:
        if not isinstance(owner, str) or not owner.strip():
            raise ValueError("default data-owner must be a team or person, not empty")
        cdk.Tags.of(scope).add("data-owner", owner, include_resource_types=types, priority=DEFAULT_PRIORITY)

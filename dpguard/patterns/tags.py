"""The governance tags every data store carries (policy clause 6)."""
from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from ..rules.governance import CLASSIFICATIONS

CLASSIFICATION_TAG = "data-classification"
OWNER_TAG = "data-owner"


def classify(scope: IConstruct, classification: str, owner: str) -> None:
    """Tag `scope` (and the data stores under it) with `data-classification` and `data-owner`.

    A value outside public|internal|confidential|restricted, or an empty owner, raises at once:
    a typo must not become an unclassified store that fails synth far from its cause."""
    if classification not in CLASSIFICATIONS:
        raise ValueError(f"{scope.node.path}: data classification must be one of "
                         f"{', '.join(CLASSIFICATIONS)}; got {classification!r}")
    if not isinstance(owner, str) or not owner.strip():
        raise ValueError(f"{scope.node.path}: a data owner (team or person) is required")
    cdk.Tags.of(scope).add(CLASSIFICATION_TAG, classification)
    cdk.Tags.of(scope).add(OWNER_TAG, owner)

"""CloudFormation stacks: not resources to judge, but where acknowledgments live. A resource
deployed from a template whose Metadata acknowledges a rule (cdk_nag.rules_to_suppress, as
dpguard.enforce() writes it) carries that acknowledgment into the audit, with its reason and
expiry, so on-call sees the same exceptions as the build did, and no others."""
from __future__ import annotations

import json

import yaml

from ...engine.loader import CfnYamlLoader
from ..clients import Clients, Unreadable, listing, read
from ..live import LiveTemplate
from . import collector

LIVE_STATUSES = ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
                 "IMPORT_ROLLBACK_COMPLETE"]


@collector("cloudformation")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    cfn = clients("cloudformation", region)
    stacks = listing(cfn, "list_stacks", "StackSummaries", StackStatusFilter=LIVE_STATUSES)
    if isinstance(stacks, Unreadable):
        live.gap(f"CloudFormation stacks could not be listed (acknowledgments made at synth are not "
                 f"applied): {stacks.reason}")
        return
    for stack in stacks:
        name = stack["StackName"]
        body = read(lambda: cfn.get_template(StackName=name, TemplateStage="Original")["TemplateBody"])
        if isinstance(body, Unreadable) or body is None:
            continue  # without the template there is no acknowledgment to carry; nothing passes by it
        template = parse(body)
        acknowledged = {lid: r["Metadata"]["cdk_nag"]["rules_to_suppress"]
                        for lid, r in (template.get("Resources") or {}).items()
                        if isinstance(r, dict) and isinstance(r.get("Metadata"), dict)
                        and isinstance(r["Metadata"].get("cdk_nag"), dict)
                        and isinstance(r["Metadata"]["cdk_nag"].get("rules_to_suppress"), list)}
        if not acknowledged:
            continue
        resources = listing(cfn, "list_stack_resources", "StackResourceSummaries", StackName=name)
        if isinstance(resources, Unreadable):
            continue
        for resource in resources:
            entries = acknowledged.get(resource.get("LogicalResourceId"))
            if entries and resource.get("PhysicalResourceId"):
                live.acknowledge(resource["PhysicalResourceId"], entries)


def parse(body) -> dict:
    """GetTemplate answers a JSON template as a mapping, a YAML one as text."""
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except ValueError:
        try:
            data = yaml.load(body, Loader=CfnYamlLoader)  # noqa: S506 - CloudFormation's safe loader
        except yaml.YAMLError:
            return {}
        return data if isinstance(data, dict) else {}

"""YAML with CloudFormation's short-form tags (!Ref, !GetAtt, ...), refusing repeated keys.

Its own module so that reading JSON templates and cloud assemblies never imports PyYAML (about
10 ms of every scan); engine/loader.py imports it on the first YAML file.
"""
from __future__ import annotations

from typing import Any

import yaml


class CfnYamlLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):
    """Safe YAML with CloudFormation's short-form tags; dates such as 2010-09-09 stay strings."""


CfnYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

SHORT_FORMS = {"Ref": "Ref", "Condition": "Condition"}
SHORT_FORMS.update({name: f"Fn::{name}" for name in (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAtt", "GetAZs", "If", "ImportValue", "Join",
    "Length", "Not", "Or", "Select", "Split", "Sub", "ToJsonString", "Transform", "ForEach",
    # the functions of a template's Rules section
    "Contains", "EachMemberEquals", "EachMemberIn", "RefAll", "ValueOf", "ValueOfAll")})


def _short_form(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    name = SHORT_FORMS.get(suffix)
    if name is None:
        hint = " (a Rain template: run `rain pkg` first)" if suffix.startswith("Rain::") else ""
        raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{suffix}{hint}", node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnYamlLoader.add_multi_constructor("!", _short_form)


def _mapping_without_duplicates(loader: yaml.Loader, node: yaml.MappingNode) -> dict:
    """A mapping whose keys are unique. A repeated key (a second `Properties`, a resource
    defined twice) is refused, as CloudFormation refuses it, rather than silently keeping one
    definition that other tools may not keep."""
    loader.flatten_mapping(node)
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)):
            continue  # construct_mapping refuses unhashable keys with its own message
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


CfnYamlLoader.add_constructor("tag:yaml.org,2002:map", _mapping_without_duplicates)

"""The hard parts of rules, written and tested once: required values, policy statements, tags,
KMS keys and ARNs. Rules stay a dozen lines by calling these."""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from .findings import Outcome, unverifiable, violation
from .template import CONDITIONAL, Resource, Template
from .values import (ABSENT, MAX_ALTERNATIVES, ResRef, Unknown, alternatives, as_bool, as_text,
                     is_literal, scalar_alternatives)


def leaves(r: Resource, path: str) -> list[tuple[str, Any]]:
    """Like `Resource.values`, but never empty: [(path, ABSENT)] when nothing is there (say, a
    `*` over an empty list), so that "not set" is judged like any other value."""
    return r.values(path) or [(f"Properties/{path.replace('.', '/')}", ABSENT)]


def require(r: Resource, path: str, ok: Callable[[Any], bool], message: str) -> Iterator[Outcome]:
    """Every value the property at `path` may take must satisfy `ok`; a value that cannot be
    known is unverifiable. `ok` receives ABSENT when the property is not set."""
    for prop_path, value in leaves(r, path):
        if isinstance(value, Unknown):
            prop = prop_path.removeprefix("Properties/") or "the resource"
            yield unverifiable(prop_path, f"{prop} cannot be verified: {value.reason}")
        elif not ok(value):
            yield violation(prop_path, message)


def require_true(r: Resource, path: str, message: str) -> Iterator[Outcome]:
    """The boolean at `path` must be true (true or "true")."""
    return require(r, path, lambda v: as_bool(v) is True, message)


def is_set(value: Any) -> bool:
    return value is not ABSENT and value is not None and value != ""


def first(r: Resource, path: str) -> Any:
    """The value at `path` when it has exactly one possible value, else ABSENT/Unknown/the
    first branch. For look-ups that decide applicability (an engine name, a key spec)."""
    values = r.values(path)
    return values[0][1] if values else ABSENT


def nested_values(node: Any, tpl: Template, *keys: str) -> list:
    """Every value at `keys` inside a node taken from a resource (a list item, say), resolving
    intrinsics at each level. ABSENT where a key is missing, Unknown where it cannot be read."""
    values = alternatives(node, tpl)
    for key in keys:
        found: list = []
        for value in values:
            if isinstance(value, dict):
                item = value.get(key, ABSENT)
                if isinstance(item, dict) and len(item) == 1:  # only these can be intrinsics
                    found.extend(alternatives(item, tpl))
                else:
                    found.append(item)
            elif value is ABSENT or isinstance(value, Unknown):
                found.append(value)
            else:
                found.append(Unknown(f"{key} is read from a value that is not a mapping"))
        values = found
    return values


# ---------------------------------------------------------------- policy documents

@dataclass(slots=True)
class Statement:
    path: str
    effect: Any
    actions: list | None
    not_actions: list | None
    resources: list | None
    not_resources: list | None
    principals: list | None  # (kind, value) pairs; kind "*" for the bare wildcard
    not_principals: list | None
    condition: Any

    @property
    def allows(self) -> bool:
        return self.effect == "Allow"

    @property
    def denies(self) -> bool:
        return self.effect == "Deny"

    @property
    def unknown(self) -> Unknown | None:
        """The first part of the statement that could not be resolved, if any."""
        if isinstance(self.effect, Unknown):
            return self.effect
        for part in (self.actions, self.not_actions, self.resources, self.not_resources,
                     self.principals, self.not_principals):
            for value in part or ():
                if isinstance(value, Unknown):
                    return value
                if isinstance(value, tuple) and isinstance(value[1], Unknown):
                    return value[1]
        return self.condition if isinstance(self.condition, Unknown) else None

    @property
    def has_condition(self) -> bool:
        return isinstance(self.condition, dict) and bool(self.condition)


def expand_ifs(node: Any, tpl: Template, depth: int = 0) -> list:
    """Every variant of `node` with each Fn::If replaced by one of its branches (decided
    conditions pick theirs) and AWS::NoValue removed. Other intrinsics stay as they are."""
    if depth > 64:
        return [Unknown("document nested too deeply")]
    if isinstance(node, dict):
        if len(node) == 1:
            key, arg = next(iter(node.items()))
            if key == "Fn::If":
                if not (isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str)):
                    return [Unknown("Fn::If needs [condition, then, else]")]
                decided = tpl.condition_value(arg[0])
                branches = [arg[1]] if decided is True else [arg[2]] if decided is False else arg[1:]
                return [v for b in branches for v in expand_ifs(b, tpl, depth + 1)]
            if key == "Ref" and arg == "AWS::NoValue":
                return [ABSENT]
        options = [(key, expand_ifs(value, tpl, depth + 1)) for key, value in node.items()]
        if all(len(o) == 1 and o[0] is node[k] for k, o in options):
            return [node]  # nothing to expand below: keep the node itself
        variants: list = [{}]
        for key, opts in options:
            variants = [dict(v, **({} if o is ABSENT else {key: o})) for v in variants for o in opts]
            if len(variants) > MAX_ALTERNATIVES:
                return [Unknown("too many Fn::If combinations")]
        return variants
    if isinstance(node, list):
        options = [expand_ifs(item, tpl, depth + 1) for item in node]
        if all(len(o) == 1 and o[0] is item for o, item in zip(options, node)):
            return [node]
        variants = [[]]
        for opts in options:
            variants = [v + ([] if o is ABSENT else [o]) for v in variants for o in opts]
            if len(variants) > MAX_ALTERNATIVES:
                return [Unknown("too many Fn::If combinations")]
        return variants
    return [node]


def _strings(node: Any, tpl: Template) -> list:
    """A policy element (string or list of strings, possibly intrinsics) as a flat list of
    str/ResRef/Unknown."""
    if type(node) is str:  # the usual case, and its own single value
        return [node]
    out = []
    # a list is its own single value; only a one-key mapping can be an intrinsic
    for value in (node,) if type(node) is list else alternatives(node, tpl):
        items = value if isinstance(value, list) else [value]
        for item in items:
            if type(item) is str:
                out.append(item)
                continue
            for v in alternatives(item, tpl):
                if isinstance(v, (Unknown, ResRef)):
                    out.append(v)
                elif v is ABSENT:
                    continue
                else:
                    text = as_text(v)
                    out.append(text if text is not None else Unknown("a policy element is not a string"))
    return out


def _principals(node: Any, tpl: Template) -> list:
    out = []
    for value in alternatives(node, tpl) if isinstance(node, dict) and len(node) == 1 else (node,):
        if isinstance(value, Unknown):
            out.append(("?", value))
        elif isinstance(value, dict):
            for kind, ids in value.items():
                out += [(kind, v) for v in _strings(ids, tpl)]
        else:
            out += [("*" if v == "*" else "AWS", v) for v in _strings(value, tpl)]
    return out


def _statement(item: dict, tpl: Template, path: str) -> Statement:
    effect = item.get("Effect", ABSENT)
    effects = [effect] if type(effect) is str else scalar_alternatives(effect, tpl, 0)
    condition = item.get("Condition", ABSENT)
    if isinstance(condition, dict) and len(condition) == 1:  # only then can it be an intrinsic
        resolved = alternatives(condition, tpl)
        condition = resolved[0] if len(resolved) == 1 else Unknown("the condition has several values")
    # an element left out is None, an element given is always a list (the rules tell the two apart)
    return Statement(
        path=path,
        effect=effects[0] if len(effects) == 1 else Unknown("the effect has several values"),
        actions=_strings(item["Action"], tpl) if "Action" in item else None,
        not_actions=_strings(item["NotAction"], tpl) if "NotAction" in item else None,
        resources=_strings(item["Resource"], tpl) if "Resource" in item else None,
        not_resources=_strings(item["NotResource"], tpl) if "NotResource" in item else None,
        principals=_principals(item["Principal"], tpl) if "Principal" in item else None,
        not_principals=_principals(item["NotPrincipal"], tpl) if "NotPrincipal" in item else None,
        condition=condition,
    )


def policy_documents(r: Resource, path: str) -> list[tuple[str, list[Statement] | Unknown]]:
    """(property path, statements) for every variant of each policy document at `path`.
    A document that cannot be read gives Unknown instead of statements. Parsed once per
    resource and path, however many rules ask."""
    key = ("policy_documents", path)
    if key not in r.cache:
        r.cache[key] = list(_policy_documents(r, path))
    return r.cache[key]


def _policy_documents(r: Resource, path: str) -> Iterator[tuple[str, list[Statement] | Unknown]]:
    for prop_path, doc in r.values(path):
        if doc is ABSENT:
            continue
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except ValueError:
                yield prop_path, Unknown("the policy document is a string that is not JSON")
                continue
        tpl = r.template
        conditional = (tpl.may_contain(CONDITIONAL) or tpl.may_contain("AWS::NoValue")) and (
            CONDITIONAL in r.mentions or "AWS::NoValue" in r.mentions)
        for variant in expand_ifs(doc, r.template) if conditional else [doc]:
            if isinstance(variant, Unknown):
                yield prop_path, variant
            elif not isinstance(variant, dict):
                yield prop_path, Unknown("the policy document is not a mapping")
            else:
                yield prop_path, _statements(variant, r.template, prop_path)


def _statements(doc: dict, tpl: Template, prop_path: str) -> list[Statement] | Unknown:
    items = doc.get("Statement", [])
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return Unknown("Statement is neither a list nor a mapping")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return Unknown(f"statement {index} is not a mapping")
        out.append(_statement(item, tpl, f"{prop_path}/Statement/{index}"))
    return out


def policy_statements(r: Resource, path: str) -> list[Statement | tuple[str, Unknown]]:
    """Every statement of every variant of the documents at `path`; an unreadable document
    comes as (path, Unknown). Listed once per resource and path (rules must not change it)."""
    key = ("policy_statements", path)
    found = r.cache.get(key)
    if found is None:
        found = r.cache[key] = []
        for prop_path, statements in policy_documents(r, path):
            if isinstance(statements, Unknown):
                found.append((prop_path, statements))
            else:
                found.extend(statements)
    return found


def is_public_principal(principal: tuple) -> bool:
    """"*", or an AWS principal ARN whose account is a wildcard (arn:aws:iam::*:root,
    arn:aws:iam::*:*): AWS accepts no wildcard inside a principal ARN, so a template that writes
    one means every account, and is judged like "*"."""
    kind, value = principal
    if value == "*":
        return kind in ("*", "AWS", "CanonicalUser")
    return kind == "AWS" and isinstance(value, str) and _WILDCARD_ACCOUNT.match(value) is not None


# arn:<partition>:iam|sts::<account with * or ?>:...
_WILDCARD_ACCOUNT = re.compile(r"arn:[^:]*:(?:iam|sts|\*)?:[^:]*:[^:]*[*?][^:]*:")


def action_matches(action: Any, pattern: str) -> bool:
    """Does the policy action (which may itself be a wildcard) grant the action `pattern`?"""
    if not isinstance(action, str):
        return False
    return glob_match(pattern.lower(), action.lower())


def glob_match(text: str, pattern: str) -> bool:
    """fnmatch.fnmatchcase(text, pattern), without compiling a regular expression for the
    patterns policies use: none or only `*` wildcards. Resource patterns name one resource
    each (⟨0:Bucket.Arn⟩/*), so fnmatch's cache of compiled patterns would miss on nearly
    every call; `?` and `[...]` are left to fnmatch."""
    if "?" in pattern or "[" in pattern:
        return fnmatch.fnmatchcase(text, pattern)
    if "*" not in pattern:
        return text == pattern
    parts = pattern.split("*")
    head, tail = parts[0], parts[-1]
    if len(text) < len(head) + len(tail) or not text.startswith(head) or not text.endswith(tail):
        return False
    # each middle part at its leftmost place after the previous one: with `*` alone, the
    # leftmost match never loses a match that a later one would find
    position, end = len(head), len(text) - len(tail)
    for part in parts[1:-1]:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


# Condition keys that pin a wildcard principal to known callers.
SCOPING_CONDITION_KEYS = {
    "aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:principalorgid",
    "aws:principalorgpaths", "aws:principalaccount", "aws:principalarn", "aws:sourcevpc",
    "aws:sourcevpce", "aws:sourceip", "aws:sourceorgid", "aws:resourceorgid", "aws:userid",
    "kms:callerAccount".lower(), "kms:viaservice", "aws:calledvia", "aws:principalservicename",
    "aws:sourceorgpaths", "cognito-identity.amazonaws.com:aud",
    "token.actions.githubusercontent.com:sub",
}


def scoping_condition(statement: Statement, keys: frozenset | set = SCOPING_CONDITION_KEYS) -> bool:
    """Does the statement carry a condition that limits who can use it? Only a positive test
    (StringEquals, ArnLike, IpAddress, ...) of a scoping key against a value that is not a bare
    wildcard counts: a negated operator (StringNotEquals) or ...IfExists still lets in callers
    that do not match or lack the key, and ForAllValues holds for an empty set."""
    if not statement.has_condition:
        return False
    for operator, entries in statement.condition.items():
        if not isinstance(operator, str) or not isinstance(entries, dict):
            continue
        op = operator.removeprefix("ForAnyValue:")
        if op.startswith("ForAllValues:") or "Not" in op or op.endswith("IfExists") or op == "Null":
            continue
        for key, value in entries.items():
            values = value if isinstance(value, list) else [value]
            # a list matches when any one value does: every value must narrow
            if isinstance(key, str) and key.lower() in keys and values and all(_narrows(v) for v in values):
                return True
    return False


def _narrows(value: Any) -> bool:
    """A condition value that names something: not a bare wildcard nor the whole internet.
    Intrinsics (an account id by Ref, an ARN by GetAtt) name something; a mapping, a list, a
    number or a boolean where a name belongs does not."""
    if isinstance(value, str):
        return bool(value.strip("*?")) and value not in ("0.0.0.0/0", "::/0")
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return isinstance(key, str) and (key == "Ref" or key.startswith("Fn::"))
    return isinstance(value, (ResRef, Unknown))


def public_statements(r: Resource, path: str) -> Iterator[Outcome]:
    """Allow statements open to any principal without a condition that scopes them."""
    for s in policy_statements(r, path):
        if isinstance(s, tuple):
            yield unverifiable(s[0], f"the policy cannot be read: {s[1].reason}")
            continue
        if not s.allows:
            if isinstance(s.effect, Unknown):
                yield unverifiable(s.path, f"the statement's effect cannot be known: {s.effect.reason}")
            continue
        for principal in s.principals or ():
            if isinstance(principal[1], Unknown):
                yield unverifiable(s.path, f"the principal cannot be known: {principal[1].reason}")
            elif is_public_principal(principal) and not scoping_condition(s):
                yield violation(f"{s.path}/Principal",
                                "allows any principal (\"*\") without a condition that limits who can use it")
                break


# ---------------------------------------------------------------- TLS-only resource policies

def denies_insecure_transport(s: Statement) -> bool:
    """A Deny of every action when aws:SecureTransport is false (CDK's enforceSSL shape)."""
    if s.effect != "Deny" or not isinstance(s.condition, dict):
        return False
    principals = s.principals or ()
    if ("*", "*") not in principals and ("AWS", "*") not in principals:
        return False
    actions = s.actions
    if not actions or not all(isinstance(a, str) for a in actions):
        return False
    if "*" not in actions and not any(a.endswith(":*") for a in actions):  # service-wide
        return False
    for operator, entries in s.condition.items():
        if operator.lower() not in ("bool", "booliftexists") or not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            values = value if isinstance(value, list) else [value]
            if key.lower() == "aws:securetransport" and any(as_bool(v) is False for v in values):
                return True
    return False


def covers(patterns: Iterable, target: str) -> bool:
    """Does one of the policy's resource patterns match the target ARN (token form) exactly or
    by wildcard? The stack's own region and account, tokens in the target, match what a
    literal ARN writes there."""
    deployed = _PSEUDO_PLACE.sub("*", target) if "⟨AWS::" in target else None
    for pattern in patterns:
        text = pattern.token() if isinstance(pattern, ResRef) else pattern
        if isinstance(text, Unknown):  # an ARN over a parameter matches the same ARN only
            text = text.symbol if text.symbol and text.symbol == target else None
        if not isinstance(text, str):
            continue
        if text == target or glob_match(target, text):
            return True
        if deployed and is_literal(text) and not any(c in text for c in "*?") \
                and glob_match(text, deployed):
            return True
    return False


_PSEUDO_PLACE = re.compile(r"⟨AWS::(?:Region|AccountId)⟩")


def tls_policy_outcomes(subject: Resource, policy_types: tuple[str, ...], document: str,
                        targets: Callable[[Resource], list[str]], message: str, *,
                        denies: Callable[[Statement], bool] = denies_insecure_transport
                        ) -> Iterator[Outcome]:
    """The subject must have a policy (one of `policy_types`, referencing it) whose every variant
    denies non-TLS access to each of `targets(subject)` (token-form ARNs, any form matches).
    `denies` tells which statements deny non-TLS access; services whose usual statement is not
    service-wide (SNS denies only sns:Publish) pass their own."""
    wanted = targets(subject)
    policies, problem = attached_policies(subject, policy_types)
    if not policies:
        if problem is not None:
            yield unverifiable("Properties", f"{message} (cannot verify: {problem.reason})")
        else:
            yield violation("Properties", message)
        return
    for policy in policies:
        variants = list(policy_documents(policy, document))
        good = bool(variants)
        for _, statements in variants:
            if isinstance(statements, Unknown):
                problem, good = statements, False
                continue
            denying = [s for s in statements if denies(s)]
            if not all(any(denies_resource(s, forms) for s in denying) for forms in wanted_forms(wanted)):
                good = False
                unknown = next((s.unknown for s in statements if s.unknown), None)
                problem = problem or unknown
        if good:
            return
    if problem is not None:
        yield unverifiable("Properties", f"{message} (cannot verify: {problem.reason})")
    else:
        yield violation("Properties", message)


# Where each resource policy type names the resources it is attached to.
POLICY_SUBJECTS = {"AWS::S3::BucketPolicy": "Bucket", "AWS::SNS::TopicPolicy": "Topics.*",
                   "AWS::SQS::QueuePolicy": "Queues.*"}


def attached_policies(subject: Resource, policy_types: tuple[str, ...]) -> tuple[list[Resource], Unknown | None]:
    """The policies (of `policy_types`) attached to `subject` through their Bucket/Topics/Queues
    property, and the reason when some policy's attachment cannot be known. A policy that only
    mentions the subject (say, in a condition) is not attached to it."""
    attached, problem = [], None
    for policy in referencing(subject, *policy_types):
        path = POLICY_SUBJECTS.get(policy.type)
        if path is None:
            attached.append(policy)
            continue
        for _, value in policy.values(path):
            if same_name(policy, value, subject):
                attached.append(policy)
                break
            if isinstance(value, Unknown):
                problem = value
            elif follow(policy, value, subject.type) is subject:
                attached.append(policy)
                break
    return attached, problem


def denies_resource(s: Statement, forms: list[str]) -> bool:
    """Does the statement reach the target, given as its equivalent ARN forms: one form named
    by Resource, or no form excluded by NotResource?"""
    if s.resources is not None:
        return any(covers(s.resources, form) for form in forms)
    if s.not_resources is not None:
        readable = all(isinstance(p, (str, ResRef)) for p in s.not_resources)
        return readable and not any(covers(s.not_resources, form) for form in forms)
    return True  # no Resource element: the policy's own subject


def wanted_forms(wanted: list) -> list[list[str]]:
    """Targets are given as lists of equivalent ARN forms, or as single strings."""
    return [w if isinstance(w, list) else [w] for w in wanted]


# ---------------------------------------------------------------- tags, keys, names

def entry_values(owner: Resource, path: str, name: str, key_field: str = "Key",
                 value_field: str = "Value") -> list:
    """Every value that the entry called `name` may have in a list of {Key, Value}-like entries
    at `path` (tags, load balancer attributes, parameter-group parameters), with ABSENT when
    some variant does not set it: the list is missing, or the entry is only in some Fn::If
    branches and no other entry sets it always."""
    out: list = []
    for _, entries in leaves(owner, path):
        if entries is ABSENT or isinstance(entries, Unknown):
            out.append(entries)
            continue
        if not isinstance(entries, list):
            out.append(Unknown(f"{path} is not a list"))
            continue
        always = False
        for item in entries:
            branches = alternatives(item, owner.template)
            matched = 0
            for entry in branches:
                if isinstance(entry, Unknown):
                    out.append(entry)
                elif isinstance(entry, dict):
                    names = scalar_alternatives(entry.get(key_field), owner.template, 0)
                    if name in names:
                        matched += 1
                        out.extend(alternatives(entry.get(value_field, ABSENT), owner.template))
                    elif any(isinstance(n, Unknown) for n in names):
                        out.append(Unknown(f"a {key_field} is chosen at deploy time"))
            always = always or matched == len(branches)
        if not always:
            out.append(ABSENT)
    return out


def tag_values(r: Resource, key: str, path: str = "Tags") -> list:
    """Every value the tag `key` may have on the resource (ABSENT when not tagged). Tags come as
    a list of {Key, Value} on most types and as a mapping on some (SSM, Backup, ...)."""
    variants = leaves(r, path)
    if not any(isinstance(tags, dict) for _, tags in variants):
        return entry_values(r, path, key)
    out = []
    for _, tags in variants:
        if isinstance(tags, dict):
            out.extend(alternatives(tags.get(key, ABSENT), r.template))
        else:
            out.append(tags if tags is ABSENT or isinstance(tags, Unknown)
                       else Unknown(f"{path} is neither a list nor a mapping"))
    return out


AWS_MANAGED_KEY_ALIASES = ("alias/aws/",)


def customer_managed_key(r: Resource, value: Any) -> bool | Unknown:
    """Is a KMS key reference (key id, ARN, alias, Ref/GetAtt) a customer-managed key?
    A key defined in a scanned template is; `alias/aws/...` is not; a literal key id or ARN is
    taken as customer managed (AWS managed keys are addressed by their alias)."""
    if value is ABSENT or value is None or value == "":
        return False
    if isinstance(value, Unknown):
        return value
    if isinstance(value, ResRef):
        target = r.template.resource_of(value)
        if target is None:
            return Unknown("the key reference cannot be followed")
        if target.type in ("AWS::KMS::Key", "AWS::KMS::ReplicaKey"):
            return True
        if target.type == "AWS::KMS::Alias":
            return True
        return Unknown(f"the key points at a {target.type}")
    text = as_text(value)
    if text is None:
        return Unknown("the key is not a string")
    return not any(alias in text for alias in AWS_MANAGED_KEY_ALIASES)


def name_form(r: Resource) -> str | None:
    """The physical name as the template writes it, when it is not a plain literal: a string
    with pseudo-parameter tokens (`⟨AWS::StackName⟩-data`) or a parameter's symbol. Two
    resources of one template that write the same form name the same resource."""
    prop = NAME_PROPERTIES.get(r.type)
    values = r.values(prop) if prop else []
    if len(values) != 1:
        return None
    value = values[0][1]
    if isinstance(value, Unknown):
        return value.symbol
    return value if isinstance(value, str) and not is_literal(value) else None


def same_name(r: Resource, value: Any, subject: Resource) -> bool:
    """Does `value` (a resolved property of `r`) name `subject` by the same written form?"""
    if r.template is not subject.template:
        return False
    text = value.symbol if isinstance(value, Unknown) else value
    return isinstance(text, str) and text == name_form(subject)


def literal_name(r: Resource, prop: str) -> str | None:
    """The resource's physical name when the template fixes it."""
    values = r.values(prop)
    if len(values) == 1 and isinstance(values[0][1], str) and is_literal(values[0][1]):
        return values[0][1]
    return None


def resource_targets(r: Resource, path: str, *types: str) -> list:
    """The resources (of `types`) a property points at, following Ref/GetAtt and literal names
    across the app. Unknown entries stand for references that cannot be followed."""
    out: list = []
    for _, value in r.values(path):
        if isinstance(value, Unknown):
            out.append(value)
            continue
        target = follow(r, value, *types)
        if target is not None:
            out.append(target)
        elif isinstance(value, str) and is_literal(value):
            out.append(Unknown(f"{value} is not defined in the scanned templates"))
        elif value is not ABSENT:
            out.append(Unknown("the reference cannot be followed"))
    return out


def follow(r: Resource, value: Any, *types: str) -> Resource | None:
    """The resource (of `types`) that one resolved value of `r` points at: by Ref/GetAtt, or by
    a literal physical name (see NAME_PROPERTIES) in any template of the app. None when it is
    not in the scanned templates."""
    target = r.template.resource_of(value, *types)
    if target is None and isinstance(value, str) and is_literal(value):
        target = _named(r.template.app, value, types)
    return target


# The property that holds each type's physical name, for templates that point at a resource by
# a literal name rather than a Ref.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName", "AWS::RDS::DBParameterGroup": "DBParameterGroupName",
    "AWS::RDS::DBClusterParameterGroup": "DBClusterParameterGroupName",
    "AWS::RDS::OptionGroup": "OptionGroupName", "AWS::DocDB::DBClusterParameterGroup": "Name",
    "AWS::Redshift::ClusterParameterGroup": "ParameterGroupName",
    "AWS::EC2::SecurityGroup": "GroupName", "AWS::EC2::LaunchTemplate": "LaunchTemplateName",
    "AWS::Logs::LogGroup": "LogGroupName", "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
}


def referencing(subject: Resource, *types: str) -> list[Resource]:
    """Resources (of `types`) that point at `subject`: by Ref/GetAtt in any template of the app,
    or by the subject's literal physical name written as a plain string."""
    found = subject.template.app.referrers(subject, *types)
    prop = NAME_PROPERTIES.get(subject.type)
    name = literal_name(subject, prop) if prop else None
    if name:
        for candidate in subject.template.app.of_type(*types):
            if candidate not in found and _mentions_string(candidate.props, lambda text: names(text, name)):
                found = found + [candidate]
    elif prop and name_form(subject):  # `!Ref SiteName` in both: compare what the template wrote
        written = subject.props.get(prop)
        for candidate in subject.template.of_type(*types):
            if candidate not in found and _mentions_node(candidate.props, written):
                found = found + [candidate]
    return found


def _mentions_node(node: Any, wanted: Any, depth: int = 0) -> bool:
    if node == wanted:
        return True
    if depth > 64:
        return False
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    return any(_mentions_node(child, wanted, depth + 1) for child in children)


def _mentions_string(node: Any, match: Callable[[str], bool], depth: int = 0) -> bool:
    if depth > 64:
        return False
    if isinstance(node, dict):
        return any(_mentions_string(v, match, depth + 1) for v in node.values())
    if isinstance(node, list):
        return any(_mentions_string(v, match, depth + 1) for v in node)
    return isinstance(node, str) and match(node)


def names(text: str, name: str) -> bool:
    """Does a literal string name the resource called `name`: the name itself, or an ARN or URL
    ending with it (arn:...:name, https://.../name)?"""
    return text == name or text.endswith((f":{name}", f"/{name}"))


def _named(app: Any, name: str, types: tuple[str, ...]) -> Resource | None:
    for rtype in types:
        prop = NAME_PROPERTIES.get(rtype)
        if prop is None:
            continue
        for candidate in app.of_type(rtype):
            own = literal_name(candidate, prop)
            if own and names(name, own):
                return candidate
    return None

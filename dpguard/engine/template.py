"""Templates, resources and the app they belong to, with the look-ups rules need.

An `App` is everything one scan judges: the templates of a cloud assembly (stacks, Stages, nested
stacks) or the files named on the command line. Templates know their parent (for nested stacks,
whose parameters are filled in by the parent's `AWS::CloudFormation::Stack` resource) and the
app's exports (for `Fn::ImportValue`), so values can be followed across stacks.
"""
from __future__ import annotations

import marshal
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from .values import (ABSENT, TOKEN_RE, ResRef, Unknown, _SUB_VAR, alternatives,
                     condition_value, scalar_alternatives)


LIVE = "dpguard:live"  # resource Metadata of live resources (dpguard/audit/live.py)


class Resource:
    __slots__ = ("logical_id", "type", "props", "raw", "template", "problem", "cache", "_walked")

    def __init__(self, logical_id: str, raw: Any, template: "Template"):
        self.logical_id = logical_id
        self.raw = raw
        self.template = template
        self.problem: str | None = None
        self.cache: dict = {}  # work shared by several rules, e.g. parsed policy documents
        self._walked: dict[str, list] = {}  # path -> what values() found there
        self.type = ""
        self.props: dict = {}
        if not isinstance(raw, dict):
            self.problem = f"the resource is a {type(raw).__name__}, not a mapping"
            return
        rtype = raw.get("Type")
        if not isinstance(rtype, str) or not rtype:
            self.problem = "the resource has no Type"
            return
        self.type = rtype
        props = raw.get("Properties", {})
        if props is None:
            props = {}
        if not isinstance(props, dict):
            self.problem = f"Properties is a {type(props).__name__}, not a mapping"
            return
        self.props = props

    @property
    def metadata(self) -> dict:
        meta = self.raw.get("Metadata") if isinstance(self.raw, dict) else None
        return meta if isinstance(meta, dict) else {}

    @property
    def live_facts(self) -> dict | None:
        """What `dpguard audit` read about a live resource that no template states (Metadata
        "dpguard:live"); None for resources of templates, whatever their metadata claims."""
        facts = self.metadata.get(LIVE) if self.template.live else None
        return facts if isinstance(facts, dict) else None

    @property
    def construct_path(self) -> str | None:
        path = self.metadata.get("aws:cdk:path")
        return path if isinstance(path, str) else self.template.construct_paths.get(self.logical_id)

    @property
    def deployed(self) -> bool | None:
        """Is the resource created? True without a `Condition`; else the condition's value, or
        None when the template cannot decide it (a parameter, or not a condition name)."""
        condition = self.raw.get("Condition") if isinstance(self.raw, dict) else None
        if condition is None:
            return True
        if not isinstance(condition, str):
            return None
        return self.template.condition_value(condition)

    def values(self, path: str) -> list[tuple[str, Any]]:
        """(property path, value) for every value at `path` (dotted; `*` walks a list).

        `Fn::If` is expanded at every level; a list entry that is `AWS::NoValue` is dropped;
        a missing key gives ABSENT; a value of the wrong shape gives Unknown with the reason.
        Walked once per resource and path, however many rules ask (each gets its own list).
        """
        found = self._walked.get(path)
        if found is None:
            props = self.props
            plain = "." not in path and path not in ("", "*") and not (len(props) == 1 and _is_call(props))
            value = props.get(path, ABSENT) if plain else None
            if value is not None and not (isinstance(value, dict) and len(value) == 1):
                found = self._walked[path] = [(f"Properties/{path}", value)]  # a top-level property as written
            else:
                found = self._walked[path] = []
                _walk(self.props, path.split(".") if path else [], 0, self.template, "Properties", found)
        return list(found)

    @property
    def mentions(self) -> frozenset[str]:
        """What the properties reference (see `mentions`), computed once."""
        found = self.cache.get("mentions")
        if found is None:
            found = self.cache["mentions"] = mentions(self.props)
        return found

    def ref(self, attr: str | None = None) -> ResRef:
        return ResRef(self.template.uid, self.logical_id, attr)

    def __repr__(self) -> str:
        return f"<{self.type} {self.logical_id}>"


def _is_call(node: dict) -> bool:
    """Is a one-key mapping an intrinsic function (Ref, Fn::...)?"""
    key = next(iter(node))
    return type(key) is str and (key == "Ref" or key.startswith("Fn::"))


def _walk(node: Any, parts: list[str], at: int, tpl: "Template", path: str, out: list) -> None:
    """Every value `node` may take, each followed down parts[at:]. Only a one-key mapping can
    be an intrinsic: anything else is its own single value, without the call (this walk runs
    for every property that every rule reads)."""
    if isinstance(node, dict) and len(node) == 1 and _is_call(node):
        for value in alternatives(node, tpl):  # resolved values: none is an intrinsic
            _follow(value, parts, at, tpl, path, out)
    else:
        _follow(node, parts, at, tpl, path, out)


def _follow(value: Any, parts: list[str], at: int, tpl: "Template", path: str, out: list) -> None:
    """One resolved value followed down parts[at:], a loop while the way is plain mappings."""
    while at < len(parts):
        key = parts[at]
        if type(value) is dict and key != "*":  # the usual step, taken before the checks below
            value, at, path = value.get(key, ABSENT), at + 1, f"{path}/{key}"
            if isinstance(value, dict) and len(value) == 1 and _is_call(value):
                for resolved in alternatives(value, tpl):
                    _follow(resolved, parts, at, tpl, path, out)
                return
            continue
        if value is ABSENT or isinstance(value, Unknown):
            out.append((f"{path}/{'/'.join(parts[at:])}", value))
            return
        if key == "*":
            if not isinstance(value, list):
                out.append((path, Unknown(f"{path} should be a list")))
                return
            for index, item in enumerate(value):
                for item_value in alternatives(item, tpl):
                    if item_value is not ABSENT:
                        _follow(item_value, parts, at + 1, tpl, f"{path}/{index}", out)
            return
        if not isinstance(value, dict):
            out.append((f"{path}/{key}", Unknown(f"{path} should be a mapping")))
            return
        value, at, path = value.get(key, ABSENT), at + 1, f"{path}/{key}"
        _walk(value, parts, at, tpl, path, out)
        return
    out.append((path, value))


@dataclass(eq=False)
class Template:
    """One CloudFormation template. `uid` is unique within the app."""

    uid: int
    path: str
    data: dict
    stack: str
    app: "App" = field(repr=False)
    parent: "Resource | None" = None  # the AWS::CloudFormation::Stack resource of a nested stack
    resources: dict[str, Resource] = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    mappings: dict = field(default_factory=dict)
    conditions: dict = field(default_factory=dict)
    construct_paths: dict[str, str] = field(default_factory=dict)  # from a cloud assembly's metadata
    live: bool = False  # written by `dpguard audit` from a live account, not read from a file
    sam: Any = None  # SAM: engine/sam.py's Expansion (which SAM resource made each resource)
    _by_type: dict[str, list[Resource]] | None = field(default=None, repr=False)
    _referrers: dict[str, dict[str, list[Resource]]] = field(default_factory=dict, repr=False)  # type -> index
    _marshalled: bytes | None = field(default=None, repr=False)
    _contains: dict[str, bool] = field(default_factory=dict, repr=False)
    _conditions_seen: dict[str, bool | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in ("Parameters", "Mappings", "Conditions"):
            section = self.data.get(name, {})
            setattr(self, name.lower(), section if isinstance(section, dict) else {})
        self.resources = {lid: Resource(str(lid), raw, self)
                          for lid, raw in self.data.get("Resources", {}).items()}

    @property
    def metadata(self) -> dict:
        meta = self.data.get("Metadata")
        return meta if isinstance(meta, dict) else {}

    def of_type(self, *types: str) -> list[Resource]:
        """The readable resources of `types`. Unreadable ones (`problem` set) are reported by the
        engine as DP-ResourceReadable; looking them up as if they were sound would judge an
        empty resource."""
        by_type = self.by_type()
        if len(types) == 1:
            return by_type.get(types[0], [])
        return [r for t in types for r in by_type.get(t, [])]

    def by_type(self) -> dict[str, list[Resource]]:
        """The readable resources of each type, in template order (types in order of first use)."""
        if self._by_type is None:
            self._by_type = {}
            for r in self.resources.values():
                if not r.problem:
                    self._by_type.setdefault(r.type, []).append(r)
        return self._by_type

    def referrers(self, logical_id: str, *types: str) -> list[Resource]:
        """Resources of this template (of `types`; of any type when none is given) whose
        properties mention `logical_id` (Ref, GetAtt, Sub), in template order. Each type's index
        is built when a rule first asks for that type: most types are never asked for."""
        if not types:
            types = tuple(self.by_type())
        found: list[Resource] = []
        for rtype in types:
            index = self._referrers.get(rtype)
            if index is None:
                index = self._referrers[rtype] = {}
                for r in self.of_type(rtype):
                    for target in r.mentions:
                        index.setdefault(target, []).append(r)
            found.extend(index.get(logical_id, ()))
        if len(types) > 1 and found:
            order = {id(r): n for n, r in enumerate(self.resources.values())}
            found.sort(key=lambda r: order[id(r)])
        return found

    def may_contain(self, text: str) -> bool:
        """False only when no string of the template, key or value, contains `text`: one search
        of the template's marshal bytes (marshal writes every string out in C, and each string
        in full the first time it meets it). True when the template cannot be marshalled (YAML
        can make values JSON has not)."""
        found = self._contains.get(text)
        if found is None:
            if self._marshalled is None:
                try:
                    self._marshalled = marshal.dumps(self.data)
                except (ValueError, RecursionError):
                    self._marshalled = b""
            found = self._contains[text] = not self._marshalled or text.encode() in self._marshalled
        return found

    @property
    def marshalled(self) -> bytes | None:
        """The template's marshal bytes (see may_contain), None when it cannot be marshalled."""
        self.may_contain("Resources")
        return self._marshalled or None

    def resource_of(self, value: Any, *types: str) -> Resource | None:
        """The resource (of one of `types`) that a resolved value points at, in any template."""
        if isinstance(value, ResRef):
            tpl = self.app.template(value.template_uid)
            r = tpl.resources.get(value.logical_id) if tpl else None
            if r is not None and (not types or r.type in types):
                return r
        return None

    def parameter_alternatives(self, name: str, depth: int) -> list:
        param = self.parameters.get(name)
        if not isinstance(param, dict):
            return [Unknown(f"parameter {name} is malformed")]
        if self.parent is not None:
            given = self.parent.props.get("Parameters", {})
            if isinstance(given, dict) and name in given:
                return alternatives(given[name], self.parent.template, depth)
        allowed = param.get("AllowedValues")
        if isinstance(allowed, list) and allowed:
            return list(allowed)
        ptype = param.get("Type")
        if isinstance(ptype, str) and ptype.startswith("AWS::SSM::Parameter::Value"):
            return [Unknown(f"parameter {name} is read from SSM Parameter Store at deploy time")]
        # A nested stack whose parent (readably) does not pass the parameter gets the default.
        default_fixed = self.parent is not None and isinstance(self.parent.props.get("Parameters", {}), dict)
        if "Default" in param and (default_fixed or self.app.trust_parameter_defaults):
            return alternatives(param["Default"], self, depth)
        return [Unknown(f"parameter {name} is chosen at deploy time", symbol=f"⟨{self.uid}:param:{name}⟩")]

    def nested_output(self, logical_id: str, output: str, depth: int) -> list:
        """The values of output `output` of the nested stack that resource `logical_id` creates,
        when that stack's template was scanned."""
        stack = self.resources[logical_id]
        child = next((t for t in self.app.templates if t.parent is stack), None)
        outputs = child.data.get("Outputs") if child else None
        if not isinstance(outputs, dict) or not isinstance(outputs.get(output), dict):
            return [Unknown(f"output {output} of nested stack {logical_id} is not in the scanned templates")]
        return alternatives(outputs[output].get("Value"), child, depth)

    def import_alternatives(self, name: str, depth: int) -> list:
        export = self.app.exports().get(name)
        if export is None:
            return [Unknown(f"Fn::ImportValue {name} is exported by no scanned stack")]
        tpl, value = export
        return alternatives(value, tpl, depth)

    def condition_value(self, name: str, seen: frozenset = frozenset()) -> bool | None:
        if name in self._conditions_seen:
            return self._conditions_seen[name]
        if name in seen or name not in self.conditions:
            return None
        result = condition_value(self.conditions[name], self, seen | {name})
        self._conditions_seen[name] = result
        return result


IMPORTS = "Fn::ImportValue"  # among the names a resource mentions: it imports a value
CONDITIONAL = "Fn::If"  # among the names a resource mentions: some value depends on a condition
_MENTIONING = frozenset(("Ref", "Fn::GetAtt", "Fn::Sub", IMPORTS, CONDITIONAL))


def mentions(node: Any) -> frozenset[str]:
    """Logical ids (and parameters, pseudo parameters) referenced anywhere inside a node by Ref,
    Fn::GetAtt or Fn::Sub, plus the IMPORTS and CONDITIONAL markers. One iterative walk (it
    visits every value of every resource once: the keys of most mappings are plain names and
    only their children are pushed)."""
    found: set[str] = set()
    stack = [node]
    push = stack.append
    while stack:
        current = stack.pop()
        if type(current) is list:
            for item in current:
                if type(item) is dict or type(item) is list:
                    push(item)
            continue
        if type(current) is not dict:
            continue
        if _MENTIONING.isdisjoint(current):
            for value in current.values():
                if type(value) is dict or type(value) is list:
                    push(value)
            continue
        for key, value in current.items():
            if key == "Ref":
                if isinstance(value, str):
                    found.add(value)
                continue
            if key == "Fn::GetAtt":
                if isinstance(value, list) and value and isinstance(value[0], str):
                    found.add(value[0])
                elif isinstance(value, str):
                    found.add(value.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) and value else value
                if isinstance(text, str):
                    found.update(m.group(1).split(".", 1)[0].strip() for m in _SUB_VAR.finditer(text))
            elif key == IMPORTS or key == CONDITIONAL:
                found.add(key)
            if type(value) is dict or type(value) is list:
                push(value)
    return frozenset(found)


@dataclass(eq=False)
class App:
    """All templates of one scan."""

    trust_parameter_defaults: bool = False
    config: Any = None  # the evaluate.Config of the run, for rules that read settings
    coverage: dict = field(default_factory=dict)  # type -> coverage.TypeCoverage, set by evaluate
    templates: list[Template] = field(default_factory=list)
    cache: dict = field(default_factory=dict, repr=False)  # indexes that rules build once per app
    _exports: dict | None = field(default=None, repr=False)
    _cross_refs: dict | None = field(default=None, repr=False)
    _by_key: dict[str, Template] = field(default_factory=dict, repr=False)  # real path -> template

    def add(self, path: str, data: dict, stack: str, parent: Resource | None = None,
            live: bool = False) -> Template:
        """Add a template; the same file named twice (`cdk.out` and a template inside it) is
        judged once."""
        key = os.path.realpath(path)
        if key in self._by_key:
            return self._by_key[key]
        tpl = Template(uid=len(self.templates), path=path, data=data, stack=stack, app=self,
                       parent=parent, live=live)
        self._by_key[key] = tpl
        self.templates.append(tpl)
        self._exports = self._cross_refs = None
        return tpl

    def template(self, uid: int) -> Template | None:
        return self.templates[uid] if 0 <= uid < len(self.templates) else None

    def of_type(self, *types: str) -> Iterator[Resource]:
        for tpl in self.templates:
            yield from tpl.of_type(*types)

    def referrers(self, resource: Resource, *types: str) -> list[Resource]:
        """Resources in any template that reference `resource`: in its own template directly, or
        from another template through a nested stack's parameters or an import."""
        found = resource.template.referrers(resource.logical_id, *types)
        if self._cross_refs is None:
            self._cross_refs = _cross_stack_index(self.templates)
        others = self._cross_refs.get((resource.template.uid, resource.logical_id))
        if others:
            found = found + [r for r in others if not types or r.type in types]
        return found

    def exports(self) -> dict:
        if self._exports is None:
            self._exports = {}
            for tpl in self.templates:
                outputs = tpl.data.get("Outputs", {})
                for output in outputs.values() if isinstance(outputs, dict) else ():
                    if not isinstance(output, dict) or not isinstance(output.get("Export"), dict):
                        continue
                    for name in scalar_alternatives(output["Export"].get("Name"), tpl, 0):
                        if isinstance(name, str):
                            self._exports[name] = (tpl, output.get("Value"))
        return self._exports


def _cross_stack_index(templates: list[Template]) -> dict[tuple[int, str], list[Resource]]:
    """(template uid, logical id) -> resources of other templates whose values resolve to it.
    Only nested stacks and templates that import values can reach into another template."""
    index: dict[tuple[int, str], list[Resource]] = {}
    for tpl in templates:
        if tpl.parent is None and not (tpl.may_contain(IMPORTS) and tpl.referrers(IMPORTS)):
            continue
        for r in tpl.resources.values():
            targets = set()
            for node in _cross_stack_nodes(r.props):
                for value in alternatives(node, tpl):
                    if isinstance(value, ResRef) and value.template_uid != tpl.uid:
                        targets.add((value.template_uid, value.logical_id))
                    elif isinstance(value, str):
                        for token in TOKEN_RE.findall(value):
                            uid, _, rest = token[1:-1].partition(":")
                            if uid.isdigit() and int(uid) != tpl.uid:
                                targets.add((int(uid), rest.split(".", 1)[0]))
            for target in targets:
                index.setdefault(target, []).append(r)
    return index


def _cross_stack_nodes(node: Any, depth: int = 0) -> Iterator[Any]:
    """Sub-nodes that may carry a value from another template: Ref to a parameter, imports."""
    if depth > 64:
        return
    if isinstance(node, dict):
        if len(node) == 1:
            key, value = next(iter(node.items()))
            if key in ("Ref", "Fn::ImportValue", "Fn::Sub", "Fn::Join"):
                yield node
                return
        for value in node.values():
            yield from _cross_stack_nodes(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _cross_stack_nodes(item, depth + 1)

"""Values as CloudFormation reads them.

`alternatives(node, template)` returns every value a template node may take once deployed:
intrinsic functions are resolved as far as the template allows and `Fn::If` yields both branches
(unless its condition can be decided from the template alone). What cannot be known before
deployment becomes an `Unknown` carrying the reason, so that rules can report it as
`unverifiable` instead of guessing.

Values are the JSON types, plus:
* `ABSENT`    the property is not set (missing, or `AWS::NoValue`);
* `ResRef`    a `Ref` or `Fn::GetAtt` to a resource of some template;
* `Unknown`   a value fixed only at deploy time (a parameter without AllowedValues, an import
              that no scanned stack exports, `Fn::GetAZs`, ...).
Strings built by `Fn::Sub`/`Fn::Join` keep references to resources and pseudo parameters as
tokens such as `⟨3:Bucket.Arn⟩`, so that ARNs can still be compared.
"""
from __future__ import annotations

import itertools
import re
from typing import Any, Callable

MAX_ALTERNATIVES = 64
MAX_DEPTH = 48


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT = _Absent()


class Unknown:
    """A value fixed only at deploy time. `symbol`, when set, is the text the value is written
    as (a parameter as a token, `arn:aws:s3:::⟨0:param:Site⟩/*` for a Sub over it): two
    resources of one template that write the same symbol name the same thing, whatever the
    parameter's value. Rules still judge the value as unknown."""

    __slots__ = ("reason", "symbol")

    def __init__(self, reason: str, symbol: str | None = None):
        self.reason = reason
        self.symbol = symbol

    def __repr__(self) -> str:
        return f"Unknown({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown) and (other.reason, other.symbol) == (self.reason, self.symbol)

    def __hash__(self) -> int:
        return hash((self.reason, self.symbol))


class ResRef:
    """A reference to resource `logical_id` of template `template_uid` (attr None for `Ref`)."""

    __slots__ = ("template_uid", "logical_id", "attr")

    def __init__(self, template_uid: int, logical_id: str, attr: str | None = None):
        self.template_uid = template_uid
        self.logical_id = logical_id
        self.attr = attr

    def token(self) -> str:
        suffix = f".{self.attr}" if self.attr else ""
        return f"⟨{self.template_uid}:{self.logical_id}{suffix}⟩"

    __str__ = token

    def __repr__(self) -> str:
        return f"ResRef({self.token()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResRef) and (other.template_uid, other.logical_id, other.attr) == (
            self.template_uid, self.logical_id, self.attr)

    def __hash__(self) -> int:
        return hash((self.template_uid, self.logical_id, self.attr))


# Pseudo parameters whose value does not matter to any rule are kept as tokens.
PSEUDO_VALUES = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
PSEUDO_TOKENS = {"AWS::AccountId", "AWS::Region", "AWS::StackName", "AWS::StackId",
                 "AWS::NotificationARNs"}
# What a Ref to a pseudo parameter resolves to (see _ref).
_PSEUDO = {**PSEUDO_VALUES, **{name: f"⟨{name}⟩" for name in PSEUDO_TOKENS}, "AWS::NoValue": ABSENT}
TOKEN_RE = re.compile(r"⟨[^⟩]*⟩")
_TOKEN_NAME = re.compile(r"⟨(?:\d+:)?([^⟩]*)⟩")


def as_written(text: str) -> str:
    """A resolved string as the user wrote it, for messages: tokens of pseudo parameters and
    resources back in Fn::Sub form (${AWS::AccountId}, ${Role.Arn})."""
    return _TOKEN_NAME.sub(r"${\1}", text) if "⟨" in text else text


def described(value: Any) -> str:
    """What a value of the wrong type is, for messages ("a list", "null", "'oops'")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return repr(as_written(value)[:60])
    return {list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def is_literal(value: Any) -> bool:
    """A string with no token in it, or a number or boolean."""
    if isinstance(value, str):
        return "⟨" not in value
    return isinstance(value, (int, float, bool))


def as_bool(value: Any) -> bool | None:
    """CloudFormation booleans: true/false, also as the strings "true"/"false" in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
    return None


def as_int(value: Any) -> int | None:
    """CloudFormation numbers: 443 and "443" alike."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                return None
            return int(number) if number.is_integer() else None
    return None


def as_text(value: Any) -> str | None:
    """A scalar as the string CloudFormation would pass on; None for objects, lists, ABSENT."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, ResRef):
        return value.token()
    return None


def _dedupe(values: list) -> list:
    if len(values) < 2:
        return values
    seen, out = set(), []
    for v in values:
        key = (type(v), v) if isinstance(v, (str, int, float, bool, ResRef, Unknown)) else id(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def alternatives(node: Any, tpl: Any, depth: int = 0) -> list:
    """Every value `node` may take in template `tpl` (see module docstring)."""
    if isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        if key == "Ref" or key.startswith("Fn::"):
            # the usual forms first, without the general machinery
            arg = node[key]
            value = _reference(key, arg, tpl)
            if value is not None:
                return [value]
            if key == "Fn::Join":
                value = _plain_join(arg, tpl)
                if value is not None:
                    return [value]
            if depth > MAX_DEPTH:
                return [Unknown("expression nested too deeply")]
            handler = INTRINSICS.get(key)
            if handler is None:
                return [Unknown(f"{key} is not evaluated by dpguard")]
            result = _dedupe(handler(node[key], tpl, depth + 1))
            if len(result) > MAX_ALTERNATIVES:
                return [Unknown(f"{key} has more than {MAX_ALTERNATIVES} possible values")]
            return result
    return [node]


def _reference(key: str, arg: Any, tpl: Any) -> Any:
    """The one value of a Ref or Fn::GetAtt to a resource of the template, or of a Ref to a
    pseudo parameter; None for any other call (logical ids have no "::", pseudo parameters do)."""
    if key == "Ref" and type(arg) is str:
        if "::" not in arg and arg in tpl.resources:
            return ResRef(tpl.uid, arg)
        return _PSEUDO.get(arg)
    if key == "Fn::GetAtt" and type(arg) is list and len(arg) == 2 and type(arg[0]) is str \
            and type(arg[1]) is str and arg[0] in tpl.resources and not arg[1].startswith("Outputs."):
        return ResRef(tpl.uid, arg[0], arg[1])
    return None


def _plain_join(arg: Any, tpl: Any) -> str | None:
    """An Fn::Join of strings and the usual references (see _reference) as the one string it
    makes (references as tokens, as _join writes them); None for any other Fn::Join."""
    if not (type(arg) is list and len(arg) == 2 and type(arg[0]) is str and type(arg[1]) is list):
        return None
    texts = []
    for item in arg[1]:
        if type(item) is not str:
            if not (type(item) is dict and len(item) == 1):
                return None
            key = next(iter(item))
            value = _reference(key, item[key], tpl)
            if type(value) is ResRef:
                item = value.token()
            elif type(value) is str:
                item = value
            else:
                return None
        texts.append(item)
    return arg[0].join(texts)


def scalar_alternatives(node: Any, tpl: Any, depth: int) -> list:
    """Alternatives of a node that must be a string: each a str, or an Unknown."""
    if type(node) is str:  # the usual case, and its own single value
        return [node]
    out = []
    for v in alternatives(node, tpl, depth):
        if isinstance(v, Unknown):
            out.append(v)
        elif v is ABSENT:
            out.append(Unknown("AWS::NoValue used where a string is required"))
        else:
            text = as_text(v)
            out.append(text if text is not None else Unknown("an object or list where a string is required"))
    return out


def _combine(parts: list[list], join: Callable[[list], Any]) -> list:
    """Cross product of each part's alternatives, joined; Unknown if any chosen part is unknown."""
    if all(len(p) == 1 and type(p[0]) is str for p in parts):  # the usual case: one string each
        return [join([p[0] for p in parts])]
    count = 1
    for p in parts:
        count *= max(len(p), 1)
        if count > MAX_ALTERNATIVES:
            return [Unknown(f"more than {MAX_ALTERNATIVES} combinations of values")]
    out = []
    for combo in itertools.product(*parts):
        unknown = next((c for c in combo if isinstance(c, Unknown)), None)
        if unknown is None:
            out.append(join(list(combo)))
        elif all(isinstance(c, str) or (isinstance(c, Unknown) and c.symbol) for c in combo):
            out.append(Unknown(unknown.reason, join([c.symbol if isinstance(c, Unknown) else c for c in combo])))
        else:
            out.append(Unknown(unknown.reason))
    return out


def _ref(arg: Any, tpl: Any, depth: int) -> list:
    if not isinstance(arg, str):
        return [Unknown("Ref needs a name")]
    if arg == "AWS::NoValue":
        return [ABSENT]
    if arg in PSEUDO_VALUES:
        return [PSEUDO_VALUES[arg]]
    if arg in PSEUDO_TOKENS:
        return [f"⟨{arg}⟩"]
    if arg in tpl.resources:
        return [ResRef(tpl.uid, arg)]
    if arg in tpl.parameters:
        return tpl.parameter_alternatives(arg, depth)
    return [Unknown(f"Ref to {arg}, which the template does not define")]


def _get_att(arg: Any, tpl: Any, depth: int) -> list:
    if isinstance(arg, str) and "." in arg:
        arg = arg.split(".", 1)
    if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
        return [Unknown("Fn::GetAtt needs [resource, attribute]")]
    logical_id, attr = arg
    if logical_id not in tpl.resources:
        return [Unknown(f"Fn::GetAtt of {logical_id}, which the template does not define")]
    out = []
    for name in scalar_alternatives(attr, tpl, depth):
        if isinstance(name, str) and name.startswith("Outputs.") \
                and tpl.resources[logical_id].type == "AWS::CloudFormation::Stack":
            out.extend(tpl.nested_output(logical_id, name.removeprefix("Outputs."), depth))
        else:
            out.append(name if isinstance(name, Unknown) else ResRef(tpl.uid, logical_id, name))
    return out


_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def _sub(arg: Any, tpl: Any, depth: int) -> list:
    variables: dict = {}
    if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
        arg, variables = arg
    out = []
    for text in scalar_alternatives(arg, tpl, depth):
        if isinstance(text, Unknown):
            out.append(text)
            continue
        pieces: list[list] = []
        pos = 0
        for m in _SUB_VAR.finditer(text):
            pieces.append([text[pos:m.start()]])
            name = m.group(1).strip()
            if name.startswith("!"):
                pieces.append(["${" + name[1:] + "}"])
            elif name in variables:
                pieces.append(scalar_alternatives(variables[name], tpl, depth))
            elif "." in name and name.split(".", 1)[0] in tpl.resources:
                pieces.append(scalar_alternatives({"Fn::GetAtt": name}, tpl, depth))
            else:
                pieces.append(scalar_alternatives({"Ref": name}, tpl, depth))
            pos = m.end()
        pieces.append([text[pos:]])
        out.extend(_combine(pieces, "".join))
    return out


def _list_alternatives(node: Any, tpl: Any, depth: int) -> list:
    """Alternatives of a node that must be a list: each a list of items, or an Unknown."""
    out = []
    for v in alternatives(node, tpl, depth):
        if isinstance(v, (list, Unknown)):
            out.append(v)
        else:
            out.append(Unknown("a list is required here"))
    return out


def _join(arg: Any, tpl: Any, depth: int) -> list:
    if not (isinstance(arg, list) and len(arg) == 2):
        return [Unknown("Fn::Join needs [delimiter, list]")]
    delimiter, items = arg
    if not isinstance(delimiter, str):
        return [Unknown("Fn::Join needs a literal delimiter")]
    out = []
    for values in _list_alternatives(items, tpl, depth):
        if isinstance(values, Unknown):
            out.append(values)
            continue
        parts = [scalar_alternatives(item, tpl, depth) for item in values]
        out.extend(_combine(parts, delimiter.join))
    return out


def _select(arg: Any, tpl: Any, depth: int) -> list:
    if not (isinstance(arg, list) and len(arg) == 2):
        return [Unknown("Fn::Select needs [index, list]")]
    out = []
    for index in scalar_alternatives(arg[0], tpl, depth):
        position = as_int(index)
        if position is None:
            out.append(index if isinstance(index, Unknown) else Unknown("Fn::Select index is not a number"))
            continue
        for values in _list_alternatives(arg[1], tpl, depth):
            if isinstance(values, Unknown):
                out.append(values)
            elif 0 <= position < len(values):
                out.extend(alternatives(values[position], tpl, depth))
            else:
                out.append(Unknown("Fn::Select index out of range"))
    return out


def _split(arg: Any, tpl: Any, depth: int) -> list:
    if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and arg[0]):
        return [Unknown("Fn::Split needs [delimiter, string]")]
    return [s if isinstance(s, Unknown) else s.split(arg[0]) for s in scalar_alternatives(arg[1], tpl, depth)]


def _find_in_map(arg: Any, tpl: Any, depth: int) -> list:
    if not (isinstance(arg, list) and len(arg) in (3, 4)):
        return [Unknown("Fn::FindInMap needs [map, key, key]")]
    default = arg[3].get("DefaultValue", ABSENT) if len(arg) == 4 and isinstance(arg[3], dict) else ABSENT
    levels: list = []
    for part in arg[:3]:
        levels.append(scalar_alternatives(part, tpl, depth))
    out = []
    frontier = [tpl.mappings]
    for keys in levels:
        next_frontier = []
        for node in frontier:
            if not isinstance(node, dict):
                continue
            for key in keys:
                if isinstance(key, Unknown) or not is_literal(key):
                    next_frontier.extend(node.values())  # judge every entry the key could pick
                elif key in node:
                    next_frontier.append(node[key])
                elif default is not ABSENT:
                    out.extend(alternatives(default, tpl, depth))
                else:
                    out.append(Unknown(f"Fn::FindInMap key {key} is not in the mapping"))
        frontier = next_frontier
    for value in frontier:
        out.extend(alternatives(value, tpl, depth))
    return out or [Unknown("Fn::FindInMap found nothing")]


def _if(arg: Any, tpl: Any, depth: int) -> list:
    if not (isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str)):
        return [Unknown("Fn::If needs [condition, then, else]")]
    decided = tpl.condition_value(arg[0])
    if decided is True:
        return alternatives(arg[1], tpl, depth)
    if decided is False:
        return alternatives(arg[2], tpl, depth)
    return alternatives(arg[1], tpl, depth) + alternatives(arg[2], tpl, depth)


def _import_value(arg: Any, tpl: Any, depth: int) -> list:
    out = []
    for name in scalar_alternatives(arg, tpl, depth):
        if isinstance(name, Unknown):
            out.append(name)
        else:
            out.extend(tpl.import_alternatives(name, depth))
    return out


def _base64(arg: Any, tpl: Any, depth: int) -> list:
    return scalar_alternatives(arg, tpl, depth)


def _unknown(reason: str) -> Callable:
    return lambda arg, tpl, depth: [Unknown(reason)]


UNREADABLE = "Fn::DpguardUnreadable"
INTRINSICS: dict[str, Callable[[Any, Any, int], list]] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::If": _if,
    "Fn::ImportValue": _import_value,
    "Fn::Base64": _base64,
    "Fn::GetAZs": _unknown("Fn::GetAZs is known only at deploy time"),
    "Fn::Cidr": _unknown("Fn::Cidr is computed at deploy time"),
    "Fn::Transform": _unknown("a macro (Fn::Transform) rewrites this value at deploy time"),
    # Written only by `dpguard audit` where an AWS API would not answer: {UNREADABLE: "why"}.
    UNREADABLE: lambda reason, tpl, depth: [Unknown(str(reason))],
}


def condition_value(expr: Any, tpl: Any, seen: frozenset = frozenset()) -> bool | None:
    """Evaluate a condition expression: True, False, or None when it depends on deploy time."""
    if isinstance(expr, str):
        return tpl.condition_value(expr, seen)
    if not (isinstance(expr, dict) and len(expr) == 1):
        return None
    key, arg = next(iter(expr.items()))
    if key == "Condition":
        return tpl.condition_value(arg, seen) if isinstance(arg, str) else None
    if not isinstance(arg, list):
        return None
    if key == "Fn::Equals" and len(arg) == 2:
        left, right = (scalar_alternatives(a, tpl, 0) for a in arg)
        if len(left) == 1 and len(right) == 1 and all(is_literal(v) for v in (left[0], right[0])):
            return left[0] == right[0]
        return None
    parts = [condition_value(a, tpl, seen) for a in arg]
    if key == "Fn::Not" and len(parts) == 1:
        return None if parts[0] is None else not parts[0]
    if key == "Fn::And":
        return False if False in parts else (None if None in parts else True)
    if key == "Fn::Or":
        return True if True in parts else (None if None in parts else False)
    return None

"""Fuzz: mutated real templates never crash or hang the scan (issue 14).

Real templates (every rule fixture case in tests/fixtures/rules/*.yaml, read with dpguard's own
CloudFormation YAML loader; examples/; the CDK assemblies in tests/data/cdk/*.out) are mutated by
hypothesis: values replaced by other JSON types (null, lists, mappings, numbers, NaN, strings with
lone surrogates, control characters, terminal escapes, formula prefixes, huge strings, deep
nesting), keys dropped or added, intrinsics injected in odd shapes (``{"Ref": 1}``,
``{"Fn::If": "x"}``, ``{"Fn::Sub": [1, 2]}``, references to the template's own resources,
parameters and conditions). Each mutated template is written to a file (alone, beside another, or
inside a copy of its cloud assembly), loaded with ``dpguard.engine.load``, judged with
``evaluate`` and rendered in every scan format. It fails on:

* a crash: any exception escaping load, evaluate or a writer (bad input must be an InputError);
* a hang: one example taking more than 5 s (hypothesis's deadline, and an alarm that interrupts
  a loop that would never end);
* a rule error: a rule that raised, which the engine reports as unverifiable (fail closed) but is
  still a bug in that rule;
* broken output: text that cannot be written as UTF-8 (a lone surrogate), JSON or SARIF that
  does not parse, JUnit that is not well-formed XML.

Kept out of the default run (10,000 examples take minutes): the ``fuzz`` marker is deselected by
pyproject's ``addopts``. Run it with::

    .venv/bin/python -m pytest -m fuzz tests/test_fuzz.py

``DPGUARD_FUZZ_EXAMPLES=N`` changes the number of examples (default 10,000).
``DPGUARD_FUZZ_SURVEY=1`` does not stop at the first failure: it records every distinct failure
(by exception type and the dpguard line it came from), reduces each one's template to a small
reproducer, prints them all, and fails at the end if there was any.
"""
from __future__ import annotations

import copy
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpguard.engine import Config, evaluate, load
from dpguard.rules import catalogue
from dpguard.engine.loader import CfnYamlLoader
from dpguard.output import SCAN_FORMATS, render_scan

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("DPGUARD_FUZZ_EXAMPLES", "10000"))
SURVEY = os.environ.get("DPGUARD_FUZZ_SURVEY") == "1"
HANG_SECONDS = 5.0


# ---------------------------------------------------------------- the seeds

@dataclass
class Seed:
    name: str
    templates: list  # one or more template documents, judged together
    assembly: Path | None = None  # a cloud assembly whose template files these are
    files: list = field(default_factory=list)  # their paths inside the assembly


def _seeds() -> list[Seed]:
    seeds = []
    for path in sorted((ROOT / "tests/fixtures/rules").glob("*.yaml")):
        cases = yaml.load(path.read_text(), Loader=CfnYamlLoader)  # noqa: S506 - a safe loader
        for case in cases:
            templates = case.get("templates") or [case.get("template")]
            seeds.append(Seed(f"{path.stem}: {case.get('name')}", templates))
    for path in sorted((ROOT / "examples").rglob("*")):
        if path.suffix in (".yaml", ".yml", ".json"):
            data = yaml.load(path.read_text(), Loader=CfnYamlLoader)  # noqa: S506 - JSON is YAML
            seeds.append(Seed(str(path.relative_to(ROOT)), [data]))
    for assembly in sorted((ROOT / "tests/data/cdk").glob("*.out")):
        files = sorted(p.relative_to(assembly) for p in assembly.rglob("*.template.json"))
        templates = [json.loads((assembly / f).read_text()) for f in files]
        seeds.append(Seed(str(assembly.relative_to(ROOT)), templates, assembly, files))
        for f, template in zip(files, templates):  # each template also alone, without its assembly
            seeds.append(Seed(f"{assembly.relative_to(ROOT)}/{f}", [template]))
    # Small seeds first: hypothesis shrinks towards the first one.
    return sorted(seeds, key=lambda s: len(json.dumps(s.templates)))


SEEDS = _seeds()


def _names(seed: Seed) -> dict[str, list[str]]:
    """Keys the mutations reuse: property names and the templates' own ids, so injected
    references resolve to something and reach into the rules."""
    keys, ids, params, conds, maps = set(), set(), set(), set(), set()

    def walk(node):
        if isinstance(node, dict):
            keys.update(k for k in node if isinstance(k, str))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for t in seed.templates:
        walk(t)
        if isinstance(t, dict):
            for section, into in (("Resources", ids), ("Parameters", params), ("Conditions", conds),
                                  ("Mappings", maps)):
                if isinstance(t.get(section), dict):
                    into.update(k for k in t[section] if isinstance(k, str))
    return {"keys": sorted(keys), "ids": sorted(ids) or ["Missing"], "params": sorted(params) or ["P"],
            "conds": sorted(conds) or ["C"], "maps": sorted(maps) or ["M"]}


# ---------------------------------------------------------------- the mutations

WEIRD_STRINGS = [
    "", " ", "\ud800", "a\udfffb", "\udc80\ud800", "\x00", "nul\x00byte", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07",
    "\x07\x08\x0b\x0c\x1f\x7f", "\r\n", "=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=x", "<!--",
    "]]>", "&amp;<x>", "${", "${Missing}", "${AWS::NoValue}", "${!Literal}", "${A.B.C}", "*", "s3:*", "*:*",
    "arn:aws:iam::*:root", "0.0.0.0/0", "::/0", "true", "false", "null", "1e400", "NaN", "-1", "65536",
    "\u202eevil", "\ufeffbom", "\U0001d54f", "AWS::NoValue", "Custom::X", "AWS::S3::Bucket",
    "a" * 100_000, "\n" * 2_000, "x" * 5_000 + "\ud800",
]
INTRINSICS = ["Ref", "Fn::If", "Fn::Sub", "Fn::GetAtt", "Fn::Join", "Fn::Select", "Fn::Split",
              "Fn::FindInMap", "Fn::ImportValue", "Fn::Base64", "Fn::Equals", "Fn::And", "Fn::Or",
              "Fn::Not", "Condition", "Fn::Cidr", "Fn::GetAZs", "Fn::Transform", "Fn::ToJsonString",
              "Fn::Length", "Fn::ForEach::Loop", "Fn::Unheard"]
SECTIONS = ["Resources", "Parameters", "Conditions", "Mappings", "Outputs", "Metadata", "Transform",
            "Rules", "AWSTemplateFormatVersion", "Description", "Type", "Properties", "DependsOn",
            "DeletionPolicy", "UpdateReplacePolicy", "aws:cdk:path", "Statement", "Effect", "Action",
            "Principal", "Resource", "Tags", "Key", "Value"]

SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(-2**70, 2**70), st.sampled_from([0, 1, -1, 22, 443, 65535, 10**100]),
    st.floats(), st.sampled_from([math.inf, -math.inf, math.nan, 0.5, -0.0]),
    st.sampled_from(WEIRD_STRINGS),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12),
)


def _deep(depth: int, kind: str, leaf):
    node = leaf
    for i in range(depth):
        node = [node] if kind == "list" else {"Properties" if i % 2 else "Fn::If": node}
    return node


DEEP = st.builds(_deep, st.sampled_from([30, 50, 150, 199, 250, 600]), st.sampled_from(["list", "dict"]), SCALARS)


def _odd_intrinsic(names: dict) -> st.SearchStrategy:
    ids, params, conds, maps = (st.sampled_from(names[k]) for k in ("ids", "params", "conds", "maps"))
    anything = st.deferred(lambda: VALUES)
    return st.one_of(
        st.sampled_from([{"Ref": 1}, {"Ref": None}, {"Ref": []}, {"Ref": {}}, {"Ref": "AWS::NoValue"},
                         {"Fn::If": "x"}, {"Fn::If": []}, {"Fn::If": [1, 2]}, {"Fn::If": ["C", 1]},
                         {"Fn::Sub": [1, 2]}, {"Fn::Sub": []}, {"Fn::Sub": ["${x}", 5]}, {"Fn::Sub": "${"},
                         {"Fn::GetAtt": "x"}, {"Fn::GetAtt": ["x"]}, {"Fn::GetAtt": "A.B.C"}, {"Fn::GetAtt": [1, 2]},
                         {"Fn::Join": "x"}, {"Fn::Join": [1, 2]}, {"Fn::Join": ["", "x"]},
                         {"Fn::Select": ["x", 1]}, {"Fn::Select": [99, [1]]}, {"Fn::Select": [-1, [1]]},
                         {"Fn::Split": [1]}, {"Fn::FindInMap": [1]}, {"Fn::FindInMap": "M"},
                         {"Fn::Equals": 1}, {"Fn::Not": [1, 2]}, {"Condition": 1}, {"Ref": "A", "Other": 1},
                         {"Fn::ImportValue": {"Fn::Sub": "${AWS::StackName}-x"}}]).map(copy.deepcopy),
        st.builds(lambda name, arg: {name: arg}, st.sampled_from(INTRINSICS), anything),
        # References to the template's own things, so they resolve (and may cycle).
        st.builds(lambda n: {"Ref": n}, ids | params),
        st.builds(lambda n, a: {"Fn::GetAtt": [n, a]}, ids, st.sampled_from(["Arn", "Id", "x.y", ""])),
        st.builds(lambda n, a: {"Fn::GetAtt": f"{n}.{a}"}, ids, st.sampled_from(["Arn", "Id"])),
        st.builds(lambda c, a, b: {"Fn::If": [c, a, b]}, conds, anything, anything),
        st.builds(lambda n: {"Fn::Sub": "arn:aws:s3:::${" + n + "}/*"}, ids | params),
        st.builds(lambda n, v: {"Fn::Sub": ["${" + n + "}", {n: v}]}, params, anything),
        st.builds(lambda m, k: {"Fn::FindInMap": [m, k, k]}, maps, anything),
        st.builds(lambda c: {"Condition": c}, conds),
    )


VALUES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.sampled_from(SECTIONS + INTRINSICS) | st.sampled_from(WEIRD_STRINGS[:30]), children,
                    max_size=4)), max_leaves=12) | DEEP


def _paths(node, limit=80):
    """The places in a document (paths of keys and indexes), top down, no deeper than `limit`
    (an injected deep value is mutated as a whole, not inside)."""
    out, todo = [], [((), node)]
    while todo:
        path, node = todo.pop(0)
        out.append(path)
        if len(path) < limit:
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            todo.extend((path + (k,), v) for k, v in items)
    return out


def _copy(value):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))  # injected values are deep on purpose
    try:
        return copy.deepcopy(value)
    finally:
        sys.setrecursionlimit(limit)


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated(draw):
    """(seed, the mutated templates, how they are written)."""
    seed = draw(st.sampled_from(SEEDS))
    templates = _copy(seed.templates)
    names = _names(seed)
    value = st.one_of(VALUES, _odd_intrinsic(names))
    key = st.sampled_from(names["keys"] or SECTIONS) | st.sampled_from(SECTIONS + INTRINSICS + WEIRD_STRINGS[:30])
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(templates) - 1))
        resources = templates[index].get("Resources") if isinstance(templates[index], dict) else None
        if isinstance(resources, dict) and resources and draw(st.integers(0, 4)) == 0:
            # The strings that reach every output: a logical id, a construct path.
            lid = draw(st.sampled_from(sorted(resources, key=str)))
            weird = draw(st.sampled_from(WEIRD_STRINGS))
            if draw(st.booleans()):
                resources[f"{lid}{weird}" if draw(st.booleans()) else weird] = resources.pop(lid)
            elif isinstance(resources[lid], dict):
                metadata = resources[lid].setdefault("Metadata", {})
                if isinstance(metadata, dict):
                    metadata["aws:cdk:path"] = f"Stack/{lid}{weird}/Resource"
            continue
        paths = list(_paths(templates[index]))
        # Mostly inside a resource (Resources/Id/...): a broken root is only an InputError.
        inner = [p for p in paths if len(p) >= 2] if draw(st.integers(0, 29)) else paths
        path = draw(st.sampled_from(inner or paths))
        op = draw(st.sampled_from(["replace", "drop", "add", "wrap", "rename"]))
        parent = _get(templates[index], path[:-1]) if path else None
        if op == "replace" or not path and op != "add":
            new = draw(value)
            if path:
                parent[path[-1]] = new
            else:
                templates[index] = new
        elif op == "drop":
            del parent[path[-1]]
        elif op == "rename" and isinstance(parent, dict):  # a logical id or a property under another name
            parent[draw(key)] = parent.pop(path[-1])
        elif op == "add":
            target = _get(templates[index], path)
            if isinstance(target, dict):
                siblings = [k for k, v in target.items() if isinstance(v, dict)]
                if siblings and draw(st.booleans()):  # a copy of a sibling (a resource) under a new key
                    target[draw(key)] = _copy(target[draw(st.sampled_from(siblings))])
                else:
                    target[draw(key)] = draw(value)
            elif isinstance(target, list):
                target.insert(draw(st.integers(0, len(target))), draw(value))
            elif path:
                parent[path[-1]] = {draw(key): draw(value), "Value": target}
        else:  # wrap the value in an intrinsic: {"Fn::If": [cond, value, other]}, [value], ...
            old = _get(templates[index], path)
            wrapper = draw(st.sampled_from(["if", "list", "join", "select", "base64", "sub"]))
            new = {"if": lambda: {"Fn::If": [draw(st.sampled_from(names["conds"])), old, draw(value)]},
                   "list": lambda: [old], "join": lambda: {"Fn::Join": ["", [old, old]]},
                   "select": lambda: {"Fn::Select": [0, [old]]}, "base64": lambda: {"Fn::Base64": old},
                   "sub": lambda: {"Fn::Sub": [old, {"x": old}]}}[wrapper]()
            if path:
                parent[path[-1]] = new
            else:
                templates[index] = new
    layout = draw(st.sampled_from(["assembly", "files"])) if seed.assembly else "files"
    return seed, templates, layout


# ---------------------------------------------------------------- one run

class Hang(Exception):
    pass


class Broken(Exception):
    """A failure that is not an exception of dpguard's own: broken output, a rule error."""


def _alarm(signum, frame):
    raise Hang(f"one example took more than {HANG_SECONDS:.0f} s")


def _write_json(path: Path, data) -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))  # deep nesting is what we test; let the writer through
    try:
        path.write_text(json.dumps(data), encoding="utf-8")
    finally:
        sys.setrecursionlimit(limit)


def scan(seed: Seed, templates: list, layout: str) -> None:
    """Write, load, judge and render; raise on any failure."""
    with tempfile.TemporaryDirectory(prefix="dpguard-fuzz-") as tmp:
        tmp = Path(tmp)
        if layout == "assembly":
            out = tmp / seed.assembly.name
            shutil.copytree(seed.assembly, out)
            for f, template in zip(seed.files, templates):
                _write_json(out / f, template)
            paths = [str(out)]
        else:
            paths = []
            for i, template in enumerate(templates):
                _write_json(tmp / f"t{i}.template.json", template)
                paths.append(str(tmp / f"t{i}.template.json"))
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            app, errors = load(paths)
            report = evaluate(app, Config(), catalogue())
            outputs = {fmt: render_scan(report, fmt, errors=errors) for fmt in SCAN_FORMATS}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    rule_errors = sorted({f"{f.rule_id}: {f.message}" for f in report.findings if "rule error" in f.message})
    if rule_errors:
        raise Broken(f"rule error: {rule_errors[0][:300]}")
    for fmt, text in outputs.items():
        try:
            text.encode("utf-8")  # what the CLI writes, to a file or stdout
        except UnicodeEncodeError as e:
            raise Broken(f"{fmt} output cannot be written as UTF-8: {e.reason} at {e.start}") from None
    for fmt in ("json", "sarif"):
        try:
            json.loads(outputs[fmt])
        except ValueError as e:
            raise Broken(f"{fmt} output does not parse: {e}") from None
    try:
        ET.fromstring(outputs["junit"].encode("utf-8", "surrogatepass"))
    except ET.ParseError as e:
        raise Broken(f"junit output is not well-formed XML: {e}") from None


# ---------------------------------------------------------------- survey mode

def _signature(e: BaseException) -> tuple:
    if isinstance(e, Broken):
        text = str(e)
        return ("Broken", text.split(":", 2)[0] if text.startswith("rule error") else text.split(":", 1)[0],
                text[:80] if text.startswith("rule error") else "")
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/dpguard/" in f.filename]
    where = f"{Path(frames[-1].filename).relative_to(ROOT)}:{frames[-1].lineno}" if frames else "?"
    return (type(e).__name__, where, "")


def _fails_same(seed, templates, layout, signature) -> bool:
    try:
        scan(seed, templates, layout)
    except Exception as e:  # noqa: BLE001
        return _signature(e) == signature
    return False


def _reduce(seed, templates, layout, signature, budget=400):
    """A smaller input that fails the same way: drop whole keys and list items, top down."""
    templates = _copy(templates)
    if layout == "assembly" and _fails_same(seed, templates, "files", signature):
        layout = "files"
    tries, changed = 0, True
    while changed and tries < budget:
        changed = False
        for index in range(len(templates)):
            for path in list(_paths(templates[index]))[1:]:
                if tries >= budget:
                    break
                try:
                    parent = _get(templates[index], path[:-1])
                except (KeyError, IndexError, TypeError):
                    continue  # gone with an earlier removal
                if isinstance(parent, list) and path[-1] >= len(parent) or isinstance(parent, dict) and path[-1] not in parent:
                    continue
                saved = parent[path[-1]]
                del parent[path[-1]]
                tries += 1
                if _fails_same(seed, templates, layout, signature):
                    changed = True
                elif isinstance(parent, list):
                    parent.insert(path[-1], saved)
                else:
                    parent[path[-1]] = saved
    return templates, layout


def _short(value, limit=2000) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (ValueError, RecursionError) as e:
        text = f"(not JSON: {e}) {value!r}"
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text):,} characters)"
    return text


# ---------------------------------------------------------------- the test

def test_mutated_templates_never_crash_or_hang():
    failures: dict[tuple, tuple] = {}
    counts: dict[tuple, int] = {}

    @settings(max_examples=EXAMPLES, deadline=int(HANG_SECONDS * 1000), database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(mutated())
    def run(case):
        seed, templates, layout = case
        try:
            scan(seed, templates, layout)
        except Exception as e:
            if not SURVEY:
                raise
            signature = _signature(e)
            counts[signature] = counts.get(signature, 0) + 1
            if signature not in failures:
                failures[signature] = (seed, _copy(templates), layout, f"{type(e).__name__}: {e}"[:300])

    faulthandler_timeout = 20 * 60 + EXAMPLES * 0.5  # a hang inside C code that the alarm cannot stop
    import faulthandler
    faulthandler.dump_traceback_later(faulthandler_timeout, exit=True)
    try:
        run()
    finally:
        faulthandler.cancel_dump_traceback_later()
    if failures:
        lines = [f"{len(failures)} distinct failure(s) in {sum(counts.values())} example(s):"]
        for signature, (seed, templates, layout, message) in failures.items():
            small, layout = _reduce(seed, templates, layout, signature)
            lines.append(f"\n* {' '.join(s for s in signature if s)} ({counts[signature]} examples): {message}\n"
                         f"  seed: {seed.name}; layout: {layout}\n  reproducer: {_short(small)}")
        report = "\n".join(lines)
        print(report)
        pytest.fail(report, pytrace=False)

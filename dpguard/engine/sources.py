"""Where a finding sits in the files a developer edits: the line of the CDK app that created the
construct, else the line of the resource in its template.

CDK records a creation stack trace for every CloudFormation element in the assembly's metadata
(`aws:cdk:creationStack`; older versions put a `trace` on each metadata entry). A JavaScript or
TypeScript app's own frames are in it when they fall within Node's stack-trace limit; a Python
app's frames only when jsii sends them, which `cdk synth --debug-app` (or the environment
variable JSII_HOST_STACK_TRACES=1) asks for. Frames in node_modules, site-packages, the jsii
runtime, Node's and Python's own code are not the user's."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

from .loader import InputError, _in_assembly, parse_file, read_capped

# "__init__ (/app/stacks/orders.py:9)", "new Orders (/app/lib/orders.ts:12:5)", "    at ...";
# the file is the shortest text before ":line" (a Windows path has a drive colon)
FRAME = re.compile(r"\((?P<file>.+?):(?P<line>\d+)(?::\d+)?\)\s*$")
NOT_USER_CODE = re.compile(r"[/\\](node_modules|site-packages|dist-packages|jsii|\.jsii)[/\\]"
                           r"|[/\\]lib[/\\]python\d+(\.\d+)?[/\\]|^node:|^<|jsii-kernel-|jsii-runtime")


def source_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder holding `.git` above `start` (the working
    directory), else `start` itself. SARIF's SRCROOT."""
    here = Path(os.path.abspath(start or Path.cwd()))
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def user_frame(trace: object) -> tuple[str, int] | None:
    """(file, line) of the first frame of a creation stack trace in the user's code: absolute
    files only (a relative one says nothing about where the app ran)."""
    for frame in trace if isinstance(trace, list) else ():
        match = FRAME.search(frame) if isinstance(frame, str) else None
        if not match:
            continue
        file = match["file"].removeprefix("file://")
        if NOT_USER_CODE.search(file) or not os.path.isabs(file):
            continue
        return file, int(match["line"])
    return None


def creation_sites(template_paths: Iterable[str]) -> dict[str, tuple[str, int]]:
    """Construct path -> (file, line) that created it, for the cloud assemblies holding these
    templates (construct paths are unique in an app, so nested stacks need no linking). What
    cannot be read is passed over: positions only make findings easier to find."""
    sites: dict[str, tuple[str, int]] = {}
    folders = {Path(p).parent for p in template_paths}
    for folder in sorted(f for f in folders if (f / "manifest.json").is_file()):
        try:
            manifest = parse_file(folder / "manifest.json")
        except InputError:
            continue
        artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
        for artifact_id, artifact in artifacts.items() if isinstance(artifacts, dict) else ():
            if isinstance(artifact, dict) and artifact.get("type") == "aws:cloudformation:stack":
                for path, entries in _metadata(folder, artifact_id, artifact).items():
                    site = _site(entries)
                    if site:
                        sites.setdefault(path.lstrip("/"), site)
    return sites


def _metadata(folder: Path, artifact_id: str, artifact: dict) -> dict:
    metadata = artifact.get("metadata")
    extra = artifact.get("additionalMetadataFile")
    if isinstance(extra, str):
        try:
            file = _in_assembly(folder, folder, extra, folder / "manifest.json", artifact_id)
            metadata = json.loads(read_capped(file).decode("utf-8"))
        except (InputError, ValueError):
            return {}
    return metadata if isinstance(metadata, dict) else {}


def _site(entries: object) -> tuple[str, int] | None:
    entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    if not any(e.get("type") == "aws:cdk:logicalId" for e in entries):
        return None  # a construct that is no CloudFormation element
    for e in entries:
        if e.get("type") == "aws:cdk:creationStack":
            return user_frame(e.get("data"))
    logical = next(e for e in entries if e.get("type") == "aws:cdk:logicalId")
    return user_frame(logical.get("trace"))


_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def resource_lines(path: str) -> dict[str, int]:
    """Logical id -> line (1-based) of its key under `Resources` in a JSON or YAML template
    file; {} for what cannot be read."""
    file = Path(path)
    try:
        text = read_capped(file).decode("utf-8-sig")
    except (InputError, UnicodeDecodeError):
        return {}
    if file.suffix == ".json" or text.lstrip().startswith("{"):
        return _json_lines(text)
    return _yaml_lines(text)


def _json_lines(text: str) -> dict[str, int]:
    try:
        start = _SPACE.match(text).end()
        for key, _, value_at in _members(text, start):
            if key == "Resources" and text.startswith("{", value_at):
                lines, line, counted = {}, 1, 0
                for name, at, _ in _members(text, value_at):
                    line, counted = line + text.count("\n", counted, at), at
                    lines.setdefault(name, line)
                return lines
    except (ValueError, IndexError, RecursionError):
        pass
    return {}


def _members(text: str, at: int):
    """(key, where the key starts, where its value starts) of each member of the JSON object
    at text[at], each value skipped by json's C decoder rather than read character by
    character (a template of 200 resources takes a millisecond)."""
    if not text.startswith("{", at):
        raise ValueError("not an object")
    at = _SPACE.match(text, at + 1).end()
    if text.startswith("}", at):
        return
    while True:
        if not text.startswith('"', at):
            raise ValueError("a key was expected")
        key, end = json.decoder.scanstring(text, at + 1)
        colon = _SPACE.match(text, end).end()
        if not text.startswith(":", colon):
            raise ValueError("':' was expected")
        value_at = _SPACE.match(text, colon + 1).end()
        yield key, at, value_at
        _, end = _DECODER.raw_decode(text, value_at)
        at = _SPACE.match(text, end).end()
        if text.startswith("}", at):
            return
        if not text.startswith(",", at):
            raise ValueError("',' was expected")
        at = _SPACE.match(text, at + 1).end()


def _yaml_lines(text: str) -> dict[str, int]:
    import yaml  # only for a YAML template: a scan of JSON never imports it

    try:  # composing builds nodes with positions and runs no constructor, so any tag will do
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return {}
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if key.value == "Resources" and isinstance(value, yaml.MappingNode):
            return {k.value: k.start_mark.line + 1 for k, _ in value.value if isinstance(k.value, str)}
    return {}

"""Reading templates: JSON or YAML files, directories, and CDK cloud assemblies.

Every problem with the input becomes an `InputError` naming the file and what is wrong with it;
nothing here lets a traceback reach the user.
"""
from __future__ import annotations

import gc
import json
import os
import stat
from pathlib import Path
from typing import Any, Iterator

from . import sam
from .template import App, Template
from .values import scalar_alternatives

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_YAML_NODES = 2_000_000
MAX_DEPTH = 200
TEMPLATE_SUFFIXES = (".json", ".yaml", ".yml", ".template")
SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}


class InputError(Exception):
    def __init__(self, path: str | os.PathLike, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


# ---------------------------------------------------------------- YAML with CloudFormation tags

# The YAML loader (dpguard/engine/cfn_yaml.py) is imported on the first YAML file read.


def __getattr__(name: str) -> Any:
    if name == "CfnYamlLoader":  # loader.CfnYamlLoader, as before it had its own module
        from .cfn_yaml import CfnYamlLoader
        return CfnYamlLoader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_shape(data: Any, path: Path) -> None:
    """Refuse YAML whose aliases expand beyond reason (alias bombs) and deep nesting. (Recursive
    aliases never get here: the constructor refuses them.)"""
    sizes: dict[int, int] = {}

    def measure(node: Any, depth: int) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if depth > MAX_DEPTH:
            raise InputError(path, f"nested more than {MAX_DEPTH} levels deep")
        key = id(node)
        if key not in sizes:
            children = node.values() if isinstance(node, dict) else node
            sizes[key] = 1 + sum(measure(child, depth + 1) for child in children)
            if sizes[key] > MAX_YAML_NODES:
                raise InputError(path, f"the document expands to more than {MAX_YAML_NODES:,} values "
                                       "(YAML aliases used as an alias bomb?)")
        return sizes[key]

    measure(data, 0)


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _not_regular(mode: int) -> str | None:
    """What a file is when it is not a regular file (None when it is one)."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def special_file(path: Path) -> str | None:
    """What `path` (followed through symlinks) is if it exists and is not a regular file, found
    without opening it: opening a FIFO blocks until a writer comes."""
    try:
        kind = _not_regular(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None  # missing or unreadable: reading it says so
    return kind


def read_capped(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. The size is counted while reading
    (st_size is 0 for devices, pipes and /proc files, so it proves nothing), and anything but a
    regular file is refused before it is read: a symlink to /dev/zero would never end."""
    kind = special_file(path)
    if kind == "a directory":
        raise InputError(path, "is a directory")
    if kind:
        raise InputError(path, f"is {kind}, not a regular file: not read")
    try:
        # O_NONBLOCK: should the path have become a FIFO since the check above, open returns at once
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(path, "no such file or directory") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory") from None
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    except ValueError as e:  # a NUL byte in the name
        raise InputError(path, f"cannot read: {e}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        kind = _not_regular(info.st_mode)
        if kind:
            raise InputError(path, f"is {kind}, not a regular file: not read")
        if info.st_size > limit:  # a quick refusal; a small st_size proves nothing (the loop counts)
            raise InputError(path, f"file is {info.st_size:,} bytes; the limit is {limit:,}")
        chunks, total = [], 0
        try:
            while total <= limit:
                chunk = handle.read(min(1 << 20, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as e:
            raise InputError(path, f"cannot read: {e.strerror or e}") from None
    if total > limit:
        raise InputError(path, f"file is larger than the limit of {limit:,} bytes")
    return b"".join(chunks)


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose keys are unique: refused otherwise, as YAML mappings are (see
    _mapping_without_duplicates), since tools disagree on which definition wins."""
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def parse_file(path: Path) -> Any:
    """The document in a JSON or YAML file."""
    try:
        text = read_capped(path).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text") from None
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_object_without_duplicates)
        except json.JSONDecodeError as e:
            raise InputError(path, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        except _DuplicateKey as e:
            raise InputError(path, f"invalid JSON: duplicate key {e.args[0]!r} (a key may appear once in "
                                   "each object)") from None
        except RecursionError:
            raise InputError(path, "nested too deeply to read") from None
        except ValueError as e:  # e.g. numbers too long to convert
            raise InputError(path, f"unreadable value: {e}") from None
    import yaml

    from .cfn_yaml import CfnYamlLoader
    try:
        data = yaml.load(text, Loader=CfnYamlLoader)  # noqa: S506 - a safe loader
        _check_shape(data, path)
        return data
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InputError(path, f"invalid YAML{where}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise InputError(path, f"invalid YAML: {e}") from None
    except RecursionError:
        raise InputError(path, "nested too deeply to read") from None
    except ValueError as e:  # e.g. numbers too long to convert
        raise InputError(path, f"unreadable value: {e}") from None


def check_template(data: Any, path: Path) -> dict:
    if not isinstance(data, dict):
        raise InputError(path, f"a template must be a mapping, not {_kind(data)}")
    resources = data.get("Resources")
    if resources is None:
        raise InputError(path, "no Resources section: not a CloudFormation template")
    if not isinstance(resources, dict):
        raise InputError(path, f"Resources must be a mapping of logical ids, not {_kind(resources)}")
    return data


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "empty"}.get(
        type(value), type(value).__name__)


def looks_like_template(data: Any) -> bool:
    return isinstance(data, dict) and ("Resources" in data or "AWSTemplateFormatVersion" in data)


# ---------------------------------------------------------------- cloud assemblies

def _in_assembly(root: Path, directory: Path, name: str, manifest: Path, what: str) -> Path:
    """`directory / name`, a file a manifest names, once it is known to stay inside the cloud
    assembly `root`. A committed or tampered manifest could otherwise make the scan read
    /etc/passwd, a device or a file of another project (`../../`, an absolute path, a symlink
    that leads out)."""
    candidate = directory / name
    if Path(name).is_absolute():
        raise InputError(manifest, f"{what} {name!r} is an absolute path: a manifest may only name "
                                   "files inside its cloud assembly")
    try:
        inside = candidate.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        inside = False
    if not inside:
        raise InputError(manifest, f"{what} {name!r} leads outside the cloud assembly {root}: refused")
    return candidate


def _assembly_stacks(directory: Path, errors: list[InputError],
                     root: Path | None = None) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """(template file, stack name, construct path of each logical id) of every stack in an
    assembly and its nested assemblies (Stages). A stack the manifest names wrongly is an error
    in `errors`; the other stacks are still given."""
    root = root or directory
    manifest_path = directory / "manifest.json"
    manifest = parse_file(manifest_path)
    artifacts = manifest.get("artifacts", {}) if isinstance(manifest, dict) else None
    if not isinstance(artifacts, dict):
        raise InputError(manifest_path, "not a cloud assembly manifest (no artifacts mapping)")
    for artifact_id, artifact in artifacts.items():
        if not isinstance(artifact, dict):
            continue
        props = artifact.get("properties") if isinstance(artifact.get("properties"), dict) else {}
        try:
            if artifact.get("type") == "aws:cloudformation:stack" and isinstance(props.get("templateFile"), str):
                name = artifact.get("displayName") or props.get("stackName") or artifact_id
                template_file = _in_assembly(root, directory, props["templateFile"], manifest_path,
                                             f"artifact {artifact_id}: templateFile")
                try:
                    paths = _construct_paths(root, directory, artifact, manifest_path, artifact_id)
                except InputError as e:  # the template is still judged, with logical ids only
                    errors.append(e)
                    paths = {}
                yield template_file, str(name), paths
            elif artifact.get("type") == "cdk:cloud-assembly" and isinstance(props.get("directoryName"), str):
                nested = _in_assembly(root, directory, props["directoryName"], manifest_path,
                                      f"artifact {artifact_id}: directoryName")
                if not (nested / "manifest.json").is_file():
                    raise InputError(nested, "nested cloud assembly has no manifest.json")
                yield from _assembly_stacks(nested, errors, root)
        except InputError as e:
            errors.append(e)


def _construct_paths(root: Path, directory: Path, artifact: dict, manifest: Path, artifact_id: str) -> dict[str, str]:
    """Logical id -> construct path, from the artifact's metadata (in the manifest, or in the
    file it names). `cdk synth` also writes the path into each resource's metadata; an app
    synthesized without the CLI does not, and this is then the only place it is found."""
    metadata = artifact.get("metadata")
    extra = artifact.get("additionalMetadataFile")
    if isinstance(extra, str):
        extra_path = _in_assembly(root, directory, extra, manifest, f"artifact {artifact_id}: additionalMetadataFile")
        if not os.path.lexists(extra_path):
            return {}  # construct paths only make messages clearer; judging goes on without them
        # A device, a FIFO or a huge file is refused (read_capped): that is no CDK output.
        try:
            metadata = json.loads(read_capped(extra_path).decode("utf-8"))
        except ValueError:
            return {}
    paths = {}
    for path, entries in metadata.items() if isinstance(metadata, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and entry.get("type") == "aws:cdk:logicalId" \
                    and isinstance(entry.get("data"), str):
                # a nested stack's resource may have the logical id of one of the stack's own,
                # with a longer path: the stack's own is kept
                known = paths.get(entry["data"])
                if known is None or len(path.lstrip("/")) < len(known):
                    paths[entry["data"]] = path.lstrip("/")
    return paths


def _load_assembly(app: App, directory: Path, assets: dict[str, Path],
                   only: set[Path] | None = None) -> list[InputError]:
    """Add every stack of the assembly (or `only` those templates), then their nested-stack
    templates, and note where CDK's asset manifests say each uploaded file comes from (to link
    nested stacks to parents). A template that cannot be read is an error returned; the others
    are still added."""
    errors: list[InputError] = []
    seen: list[Path] = []
    own: dict[str, dict[str, str]] = {}  # stack template -> construct paths in its metadata
    paths: dict[Path, dict[str, str]] = {}  # folder -> the paths left for its nested stacks
    added = []

    def add(template_file: Path, stack: str):
        try:
            added.append(app.add(str(template_file), check_template(parse_file(template_file), template_file), stack))
        except InputError as e:
            errors.append(e)

    for template_file, stack, construct_paths in _assembly_stacks(directory, errors):
        if only is not None and template_file.resolve() not in only:
            continue
        add(template_file, stack)
        own[str(template_file)] = construct_paths
        paths.setdefault(template_file.parent, {})
        seen.append(template_file)
    for folder in sorted({p.parent for p in seen} | ({directory} if only is None else set())):
        try:
            assets.update(_asset_sources(folder))
        except InputError as e:
            errors.append(e)
        for template_file in sorted(folder.glob("*.nested.template.json")):
            if template_file not in seen:
                seen.append(template_file)
                add(template_file, template_file.name.replace(".nested.template.json", ""))
    # Nested stacks' resources are listed under their parent stack's metadata: a stack keeps the
    # paths of its own resources (another stack may use the same logical ids), its nested stacks
    # share the rest.
    for tpl in added:
        if tpl.path in own:
            left = {k: v for k, v in own[tpl.path].items() if k not in tpl.resources}
            paths[Path(tpl.path).parent].update(left)
            tpl.construct_paths = {k: v for k, v in own[tpl.path].items() if k in tpl.resources}
    for tpl in added:
        if tpl.path not in own:
            tpl.construct_paths = paths.get(Path(tpl.path).parent, {})
    return errors


def _asset_sources(folder: Path) -> dict[str, Path]:
    """S3 object key of each file asset -> the file in the assembly, from `*.assets.json`.
    These manifests only help to link nested stacks: one that is not valid JSON is passed over,
    but one that is a device, a FIFO or too large is refused (read_capped), as no CDK writes that."""
    sources: dict[str, Path] = {}
    for manifest in sorted(folder.glob("*.assets.json")):
        try:
            files = json.loads(read_capped(manifest).decode("utf-8")).get("files")
        except (ValueError, AttributeError):
            continue
        for asset in files.values() if isinstance(files, dict) else ():
            source = asset.get("source") if isinstance(asset, dict) else None
            destinations = asset.get("destinations") if isinstance(asset, dict) else None
            if not (isinstance(source, dict) and isinstance(source.get("path"), str)
                    and isinstance(destinations, dict)):
                continue
            for destination in destinations.values():
                key = destination.get("objectKey") if isinstance(destination, dict) else None
                if isinstance(key, str):
                    sources[key] = folder / source["path"]
    return sources


def _link_nested_stacks(app: App, assets: dict[str, Path]) -> None:
    """Give each nested-stack template its parent `AWS::CloudFormation::Stack` resource, so its
    parameters resolve to what the parent passes. The child is found by the asset path CDK
    writes into the parent's metadata (`cdk synth`), else by the file that the TemplateURL's
    last segment names: an S3 object key in CDK's asset manifests, or a scanned file's name."""
    by_path = {str(Path(t.path)): t for t in app.templates}
    by_name = {Path(t.path).name: t for t in app.templates}
    for tpl in list(app.templates):
        # Every Stack resource, unreadable ones too (of_type skips those): the child is that
        # nested stack whatever the parent's Properties say.
        for r in (r for r in tpl.resources.values() if r.type == "AWS::CloudFormation::Stack"):
            candidates = []
            asset = r.metadata.get("aws:asset:path")
            if isinstance(asset, str):
                candidates.append(by_path.get(str(Path(tpl.path).parent / asset)) or by_name.get(asset))
            for url in scalar_alternatives(r.props.get("TemplateURL"), tpl, 0):
                if isinstance(url, str):
                    segment = url.rsplit("/", 1)[-1]
                    source = assets.get(segment)
                    candidates.append(by_path.get(str(source)) if source else by_name.get(segment))
            child = next((c for c in candidates if c is not None), None)
            if child is not None and child is not tpl and child.parent is None:
                child.parent = r
                child.stack = _nested_stack_name(r)


def _nested_stack_name(r) -> str:
    """CDK's NestedStack `Nested` sits at <stack>/Nested.NestedStack/Nested.NestedStackResource:
    call it <stack>/Nested, as the developer named it; other nested stacks by logical id."""
    path = r.construct_path or ""
    if path.endswith(".NestedStackResource") and "/" in path:
        return path.rsplit("/", 1)[0].removesuffix(".NestedStack")
    return f"{r.template.stack}/{r.logical_id}"


# ---------------------------------------------------------------- entry point

def load(paths: list[str], trust_parameter_defaults: bool = False) -> tuple[App, list[InputError]]:
    """Load every template under `paths`. Problems with one file do not stop the others: they
    are returned beside the app so the caller can report them and still judge the rest."""
    # Parsed documents hold no cycles: the collector's passes over them while they are read
    # (3 ms for 2,000 resources) would find nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load(paths, trust_parameter_defaults)
    finally:
        if collecting:
            gc.enable()


def _load(paths: list[str], trust_parameter_defaults: bool) -> tuple[App, list[InputError]]:
    app = App(trust_parameter_defaults=trust_parameter_defaults)
    errors: list[InputError] = []
    assets: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                errors.extend(_load_directory(app, path, assets))
            elif path.exists():
                _add_file(app, path, check_template(parse_file(path), path))
            else:
                raise InputError(path, "no such file or directory")
        except InputError as e:
            errors.append(e)
    _link_nested_stacks(app, assets)
    return app, errors


def load_stack_templates(template_files: list[str], trust_parameter_defaults: bool = False) -> App:
    """Load the given stack templates of one cloud assembly being synthesized (what CDK hands a
    validation plugin), with the nested-stack templates beside them, which CDK does not list."""
    app = App(trust_parameter_defaults=trust_parameter_defaults)
    if not template_files:
        return app
    wanted = {Path(p).resolve() for p in template_files}
    root = Path(os.path.commonpath([str(p.parent) for p in wanted]))
    assets: dict[str, Path] = {}
    if (root / "manifest.json").is_file():
        errors = _load_assembly(app, root, assets, only=wanted)
        if errors:
            raise errors[0]
    for path in sorted(wanted - {Path(t.path).resolve() for t in app.templates}):
        app.add(str(path), check_template(parse_file(path), path), _stack_name(path))  # not in a manifest
    _link_nested_stacks(app, assets)
    return app


def _add_file(app: App, path: Path, data: dict) -> Template:
    """Add a template file. A SAM template is judged as what it deploys: expanded by SAM's
    translator (engine/sam.py), which also names the SAM resource in findings. (Cloud
    assemblies are judged as CDK hands them to the validation plugin, so that `dpguard scan
    cdk.out` and `cdk synth` agree.)"""
    expansion = None
    if sam.is_sam(data):
        try:
            expansion = sam.expand(data, app.trust_parameter_defaults)
        except sam.SamRejected as e:
            raise InputError(path, f"the SAM transform rejects the template: {e}") from None
        data = expansion.data
    tpl = app.add(str(path), data, _stack_name(path))
    tpl.sam = expansion
    return tpl


def _stack_name(path: Path) -> str:
    name = path.name
    for suffix in (".template.json", ".template.yaml", ".template.yml") + TEMPLATE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _load_directory(app: App, directory: Path, assets: dict[str, Path]) -> list[InputError]:
    if (directory / "manifest.json").is_file():
        return _load_assembly(app, directory, assets)
    errors: list[InputError] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        here = Path(root)
        if here != directory and (here / "manifest.json").is_file():
            try:
                errors.extend(_load_assembly(app, here, assets))
            except InputError as e:
                errors.append(e)
            dirs[:] = []
            continue
        for name in sorted(files):
            if not name.endswith(TEMPLATE_SUFFIXES):
                continue
            path = here / name
            kind = special_file(path)
            if kind:  # never opened: a FIFO would block the scan, /dev/zero would never end
                errors.append(InputError(path, f"is {kind}, not a regular file: skipped"))
                continue
            try:
                data = parse_file(path)
            except InputError as e:
                errors.append(e)  # it may have been a template: never pass it over silently
                continue
            if looks_like_template(data):
                try:
                    _add_file(app, path, check_template(data, path))
                except InputError as e:
                    errors.append(e)
    return errors


__all__ = ["InputError", "load", "load_stack_templates", "parse_file", "CfnYamlLoader", "Template"]

"""Supported dependency ranges: the installed package pins nothing exactly, its floors are what
requirements-oldest.txt installs (./dev test runs the CDK-facing tests under them), the project's
own pins sit inside the ranges, and an aws-cdk-lib or cdk-nag outside them stops enforce() with
one line naming the range."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dpguard.cdk.versions import SUPPORTED, UnsupportedVersion, release, require_supported

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?\s*(.*)$")


def parse(line: str) -> tuple[str, dict[str, str]] | None:
    """`aws-cdk-lib>=2.269.0,<3` -> ("aws-cdk-lib", {">=": "2.269.0", "<": "3"})."""
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        return None
    name, _, spec = REQUIREMENT.match(line).groups()
    clauses = {}
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        op, version = re.match(r"(==|>=|<=|<|>|~=|!=)\s*(\S+)", clause).groups()
        clauses[op] = version
    return name.lower().replace("_", "-"), clauses


def installed_ranges() -> dict[str, dict[str, str]]:
    """What `pip install 'dpguard[aws,cdk]'` asks of other packages."""
    ranges: dict[str, dict[str, str]] = {}
    for line in PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["aws"] \
            + PYPROJECT["optional-dependencies"]["cdk"]:
        name, clauses = parse(line)
        assert ranges.setdefault(name, clauses) == clauses, f"{name}: two different ranges"
    return ranges


def pins(file: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / file).read_text(encoding="utf-8").splitlines():
        parsed = parse(line)
        if parsed:
            name, clauses = parsed
            assert list(clauses) == ["=="], f"{file}: {line!r} is not an exact pin"
            found[name] = clauses["=="]
    return found


def test_the_installed_package_declares_ranges_not_pins():
    for name, clauses in installed_ranges().items():
        assert "==" not in clauses, f"pyproject.toml pins {name} exactly"
        assert ">=" in clauses and "<" in clauses, f"{name}: give a floor and a ceiling, not {clauses}"


def test_cdk_ranges_are_the_ones_enforce_checks():
    ranges = installed_ranges()
    for name, (low, high) in SUPPORTED.items():
        assert ranges[name] == {">=": low, "<": high}


def test_the_oldest_pins_are_the_floors():
    oldest = pins("requirements-oldest.txt")
    for name, clauses in installed_ranges().items():
        assert name in oldest, f"requirements-oldest.txt does not pin {name}"
        assert release(oldest[name]) == release(clauses[">="]), \
            f"{name}: requirements-oldest.txt has {oldest[name]}, pyproject.toml's floor is {clauses['>=']}"


def test_the_projects_own_pins_sit_inside_the_ranges():
    pinned = pins("requirements.txt")
    for name, clauses in installed_ranges().items():
        version = release(pinned[name])
        assert release(clauses[">="]) <= version < release(clauses["<"]), \
            f"requirements.txt pins {name}=={pinned[name]}, outside {clauses}"


@pytest.mark.parametrize("versions", [
    {"aws-cdk-lib": "2.269.0", "cdk-nag": "3.0.1"},
    {"aws-cdk-lib": "2.275.0", "cdk-nag": "3.0.2"},
    {"aws-cdk-lib": "2.999.1", "cdk-nag": "3.9.0"},
    {},  # neither installed: importing them fails with dpguard's own "pip install" message
])
def test_supported_versions_pass(versions):
    require_supported(versions)


@pytest.mark.parametrize("versions, message", [
    ({"aws-cdk-lib": "2.268.0", "cdk-nag": "3.0.2"},
     "dpguard's CDK integration needs aws-cdk-lib>=2.269.0,<3, but 2.268.0 is installed: "
     "pip install 'aws-cdk-lib>=2.269.0,<3'"),
    ({"aws-cdk-lib": "3.0.0"}, "needs aws-cdk-lib>=2.269.0,<3, but 3.0.0 is installed"),
    ({"cdk-nag": "2.38.2"}, "needs cdk-nag>=3.0.1,<4, but 2.38.2 is installed; cdk-nag 2's packs are "
                            "Aspects with their own suppressions"),
    ({"cdk-nag": "3.0.0"}, "needs cdk-nag>=3.0.1,<4, but 3.0.0 is installed: pip install 'cdk-nag>=3.0.1,<4'"),
    ({"cdk-nag": "4.0.0rc1"}, "needs cdk-nag>=3.0.1,<4, but 4.0.0rc1 is installed"),
])
def test_an_unsupported_version_is_one_line_naming_the_range(versions, message):
    with pytest.raises(UnsupportedVersion) as e:
        require_supported(versions)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_enforce_with_an_old_aws_cdk_lib_stops_before_jsii(tmp_path):
    """An app with aws-cdk-lib 2.268.0 installed (its package metadata, found first on the path,
    as when an app's own pins are older) fails at enforce() with the range, not at synth."""
    dist = tmp_path / "aws_cdk_lib-2.268.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aws-cdk-lib\nVersion: 2.268.0\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", "import aws_cdk as cdk, dpguard\ndpguard.enforce(cdk.App())\nprint('enforced')"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "enforced" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last == ("dpguard.cdk.versions.UnsupportedVersion: dpguard's CDK integration needs aws-cdk-lib>=2.269.0,<3, "
                    "but 2.268.0 is installed: pip install 'aws-cdk-lib>=2.269.0,<3'")
    assert "jsii" not in result.stderr.replace("JSII_", "")

"""The aws-cdk-lib and cdk-nag versions dpguard.enforce() works with, checked before anything of
them is used: outside the range, one line naming it, instead of a jsii error deep inside synth.

The floors were found by running tests/test_enforce.py and the pattern and stack tests against
each release (./dev test runs them again under requirements-oldest.txt):
* aws-cdk-lib 2.269.0: before it, CDK refuses cdk-nag's granular acknowledgment ids
  (`AwsSolutions::AwsSolutions-IAM5[Action::kms:GenerateDataKey*]`, which the patterns use);
  before 2.262.0 a failed validation does not fail synth and no validation-report.json is written.
* cdk-nag 3.0.1: 3.0.0 does not copy CDK's acknowledgments into template metadata, so an expired
  acknowledgment would pass unnoticed. cdk-nag 2 is not supported: its packs are Aspects whose
  acknowledgments are its own NagSuppressions, which `dpguard.acknowledge` and CDK's
  `Validations.of(...).acknowledge` do not reach.
pyproject.toml's `cdk` extra declares the same ranges (tests/test_versions.py keeps them equal)."""
from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping

# distribution -> (lowest supported, first unsupported)
SUPPORTED = {
    "aws-cdk-lib": ("2.269.0", "3"),
    "cdk-nag": ("3.0.1", "4"),
}
# (distribution, major version) -> why that major is not supported
WHY = {
    ("cdk-nag", 2): "cdk-nag 2's packs are Aspects with their own suppressions, which dpguard's "
                    "acknowledgments do not reach",
}


class UnsupportedVersion(ImportError):
    """aws-cdk-lib or cdk-nag is installed in a version dpguard.enforce() does not work with."""


def release(version: str) -> tuple[int, ...]:
    """`2.269.0` -> (2, 269, 0), `3` -> (3, 0, 0); a pre- or post-release suffix (`3.0.0rc1`)
    is ignored; what has no leading number is ()."""
    parts = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    return tuple(parts + [0] * (3 - len(parts))) if parts else ()


def specifier(name: str) -> str:
    low, high = SUPPORTED[name]
    return f">={low},<{high}"


def installed_versions() -> dict[str, str]:
    """The installed versions of the checked distributions; one that is not installed is left
    out (importing it then fails with dpguard's "pip install 'dpguard[cdk]'" message)."""
    found = {}
    for name in SUPPORTED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def require_supported(versions: Mapping[str, str] | None = None) -> None:
    """Raise UnsupportedVersion, with one line naming the supported range, when an installed
    aws-cdk-lib or cdk-nag is outside it."""
    versions = installed_versions() if versions is None else versions
    for name, version in versions.items():
        low, high = SUPPORTED[name]
        found = release(version)
        if release(low) <= found < release(high):
            continue
        why = WHY.get((name, found[0] if found else None))
        raise UnsupportedVersion(f"dpguard's CDK integration needs {name}{specifier(name)}, but "
                                 f"{version} is installed{'; ' + why if why else ''}: "
                                 f"pip install '{name}{specifier(name)}'")

"""The package's imports run one way: the engine knows nothing of the rules, the CLI or the
writers; the subcommands share dpguard/cli_common.py instead of importing dpguard/cli.py; and no
two areas import each other."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dpguard"

# area -> the areas it may import. "dpguard" is the package's front door (dpguard.enforce and
# the other names of its __init__); its __version__ is a leaf every area may read.
ALLOWED = {
    "__version__": set(),
    "cli_common": set(),
    "inventory": set(),
    "engine": {"inventory"},
    "rules": {"engine", "inventory"},
    "output": {"__version__", "engine", "inventory", "audit"},
    "audit": {"__version__", "cli_common", "engine", "rules"},
    "response": {"cli_common", "engine"},
    "cdk": {"__version__", "engine", "rules"},
    "testing": {"engine", "rules"},
    "patterns": {"cdk", "rules"},
    "report": {"__version__", "engine", "output", "rules"},
    "stacks": {"cdk", "output", "patterns", "response"},
    "org_audit": {"audit", "engine", "output", "report"},
    "cli": {"__version__", "audit", "cli_common", "engine", "output", "report", "response", "rules"},
    "dpguard": {"cdk"},
}


def imports() -> dict[str, set[str]]:
    """module -> the dpguard modules it imports (at any depth of the file, lazy imports too)."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        here = parts if is_package else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                if target == "dpguard":  # `from . import report`, `from .. import __version__`
                    found[name].update(f"dpguard.{alias.name}" for alias in node.names)
                else:
                    found[name].add(target)
            elif isinstance(node, ast.Import):
                found[name].update(alias.name for alias in node.names)
    return {name: {t for t in targets if t.split(".")[0] == "dpguard"} for name, targets in found.items()}


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "dpguard"


def test_every_area_imports_only_the_areas_below_it():
    wrong = sorted(f"{module} imports {target}" for module, targets in imports().items() for target in targets
                   if area(target) != area(module) and area(target) not in ALLOWED.get(area(module), set()))
    assert wrong == []


def test_the_allowed_imports_have_no_circle():
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
                   for nxt in ALLOWED.get(start, ()))
    assert [a for a in ALLOWED if reaches(a, a, {a})] == []


def test_a_new_area_must_be_placed():
    assert {area(m) for m in imports()} <= set(ALLOWED)


def test_nothing_but_the_entry_point_imports_the_cli():
    assert sorted(m for m, targets in imports().items() if "dpguard.cli" in targets and m != "dpguard.cli") == []

"""Write the JSON copies of dpguard's YAML data tables, which a scan reads instead of the YAML.

The YAML files are the ones to edit (they carry comments and read well); reading them on every
scan cost about 15 ms (importing PyYAML and parsing), reading JSON well under 1 ms. After editing
one of the YAML tables, run

    .venv/bin/python scripts/data_tables.py

tests/test_data_tables.py fails while a JSON copy says something other than its YAML.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

# re's parser: the only way to read a pattern's structure (it is re.compile's first step)
from re import _constants as sre, _parser as sre_parse  # noqa: I001

ROOT = Path(__file__).resolve().parent.parent
TABLES = [ROOT / "dpguard/inventory/exemptions.yaml", ROOT / "dpguard/engine/cdk_made.yaml"]
NOTE = "generated from {name} by scripts/data_tables.py: edit the YAML, then run the script"


def as_json(source: Path) -> str:
    """The table's JSON text: {"note": ..., "table": <the YAML's content>}, and for the table of
    CDK-made resources "markers" (see markers())."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    out = {"note": NOTE.format(name=source.name), "table": data}
    if source.name == "cdk_made.yaml":
        out["markers"] = markers(data)
    return json.dumps(out, indent=1, ensure_ascii=False) + "\n"


def markers(entries: list[dict]) -> dict[str, list[str] | None]:
    """For the construct-path patterns and the logical-id patterns of all entries: texts of
    which every string that some entry's pattern matches contains one. A scan tests a resource
    for them with `in` before it compiles any pattern (compiling the table's patterns costs more
    than a scan of most apps spends in them). None when some pattern has no such text."""
    out: dict[str, list[str] | None] = {}
    for kind in ("path", "logical_id"):
        found: set[str] = set()
        for e in entries:
            texts = required_texts(e[kind])
            if texts is None:
                found = None
                break
            found |= texts
        # a text that holds another marker adds nothing: whatever holds it holds the other
        out[kind] = sorted(t for t in found if not any(o != t and o in t for o in found)) if found is not None else None
    return out


def required_texts(pattern: str) -> set[str] | None:
    """Texts of which every match of `pattern` contains at least one, or None when the pattern
    names none (or ignores case)."""
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & re.IGNORECASE:
        return None
    return _required(list(parsed))


def _required(items: list) -> set[str] | None:
    """The best such set for a parsed sequence: its longest run of literal characters, or what a
    group, an alternation or a repeat of at least once inside it requires."""
    best: set[str] | None = None

    def consider(texts: set[str] | None) -> None:
        nonlocal best
        if texts and all(texts) and (best is None or min(map(len, texts)) > min(map(len, best))):
            best = texts

    run = ""
    for op, arg in items:
        if op is sre.LITERAL:
            run += chr(arg)
            continue
        consider({run} if run else None)
        run = ""
        if op is sre.SUBPATTERN and not (arg[1] & re.IGNORECASE):  # (group, add flags, del flags, items)
            consider(_required(list(arg[3])))
        elif op is sre.BRANCH:
            options = [_required(list(branch)) for branch in arg[1]]
            if all(options):
                consider(set().union(*options))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and arg[0] >= 1:
            consider(_required(list(arg[2])))
    consider({run} if run else None)
    return best


def main() -> int:
    for source in TABLES:
        target = source.with_suffix(".json")
        target.write_text(as_json(source), encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

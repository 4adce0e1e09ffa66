"""Write the JSON copies of dpguard's YAML data tables, which a scan reads instead of the YAML.

The YAML files are the ones to edit (they carry comments and read well); reading them on every
scan cost about 15 ms (importing PyYAML and parsing), reading JSON well under 1 ms. After editing
one of the YAML tables, run

    .venv/bin/python scripts/data_tables.py

tests/test_data_tables.py fails while a JSON copy says something other than its YAML.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TABLES = [ROOT / "dpguard/inventory/exemptions.yaml", ROOT / "dpguard/engine/cdk_made.yaml"]
NOTE = "generated from {name} by scripts/data_tables.py: edit the YAML, then run the script"


def as_json(source: Path) -> str:
    """The table's JSON text: {"note": ..., "table": <the YAML's content>}."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    return json.dumps({"note": NOTE.format(name=source.name), "table": data}, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    for source in TABLES:
        target = source.with_suffix(".json")
        target.write_text(as_json(source), encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

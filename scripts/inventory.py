"""Inventory of CloudFormation resource types, from the resource provider schemas cfn-lint ships.

Development-time only (cfn-lint is a test dependency). For every type CloudFormation knows, it lists
which security-relevant topics its writable properties touch: encryption at rest, TLS, logging,
public access, credentials, resource policies. The result, dpguard/inventory/resource_types.json,
ships with dpguard: the coverage report reads it to tell "no rule judges this type" from "this type
has nothing the policy governs". tests/test_inventory.py fails when a type with such properties is
neither judged by a rule nor listed in dpguard/inventory/exemptions.yaml with a reason.

    .venv/bin/python scripts/inventory.py            # rewrite resource_types.json
    .venv/bin/python scripts/inventory.py --check    # exit 1 when the committed file is stale
    .venv/bin/python scripts/inventory.py --explain AWS::MSK::Cluster   # the properties behind it
    .venv/bin/python scripts/inventory.py --uncovered  # types no rule judges and no exemption lists
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "dpguard" / "inventory" / "resource_types.json"

# A property belongs to a topic when its name matches; names that only point at or describe a
# thing (an ARN, a length, a type) are not credentials themselves.
TOPICS = {
    "encryption": re.compile(r"Encrypt|Kms|KMS|SSE|Sse[A-Z]|Cmk|CMK|CustomerManagedKey|EncryptionKey"),
    "tls": re.compile(r"Tls|TLS|Ssl|SSL|Https|HTTPS|^Protocols?$|SecurityPolicy|ProtocolVersion"
                      r"|ProtocolPolicy|InTransit"),
    "logging": re.compile(r"Logging|LogConfig|LogsConfig|LogGroup|LogDestination|LogPublishing"
                          r"|AccessLog|LogExports|CloudwatchLogs|CloudWatchLogs|^Logs$|AuditLog"
                          r"|LogSetting|LogLevel|LogType"),
    "public": re.compile(r"Public(?!Key)|InternetFacing|^Scheme$|EndpointType|DirectInternetAccess"
                         r"|AppNetworkAccessType|AllowUnauthenticated"),
    "credentials": re.compile(r"Password|Secret|Credential|Token|ApiKey|PrivateKey|AccessKey|Passphrase"),
    "policy": re.compile(r"PolicyDocument|^Policy$|ResourcePolicy|KeyPolicy|AccessPolic|PolicyText"),
}
# Names that point at, describe or switch a credential rather than hold one (an ARN, a length, a
# policy, "use caller credentials"), and "token" in the sense of language models and IMDS.
NOT_A_CREDENTIAL = re.compile(
    r"(Arn|ARN|Arns|Id|ID|Name|Identifier|Location|Ttl|TTL|Validity|Length|Type|Units|Expiration|Rotation"
    r"|Reference|Ref|Uri|Url|Key|Keys|Path|Field|Header|Source|Config|Configuration|Settings|Enabled"
    r"|Required|Size|Days|Seconds|Policy|Options|Parameter|Param|Flags|Attributes|Expression|Endpoint"
    r"|Scopes|Audiences|Host|Provider|Vendor|Prefix|Stages|Selection|Metadata|Properties|Details|Map"
    r"|List|Role|Template|CreatedAt|Status|Check|Method|Revocation|Encryption|Encrypted|Version|Specs)$"
    r"|^(Use|Is|Manage|Rotate|Generate|Enable|Validate|Allow|AccessControlAllow)[A-Z]"
    r"|ClientToken|IdempotencyToken|TokenKey|^Secrets?$|SecretsManager|MaxTokens|OverlapTokens"
    r"|OutputTokens|^Tokens$|Tokenizer|^HttpTokens$|^ServiceToken$")


def schema_dir() -> Path:
    try:
        import cfnlint.data.schemas as schemas
    except ImportError:
        sys.exit("scripts/inventory.py needs cfn-lint (a test dependency): .venv/bin/pip install -r requirements-dev.txt")
    return Path(schemas.__file__).parent


def schemas() -> dict[str, dict]:
    """Every type of every region's provider list, each read from its schema file once."""
    base = schema_dir()
    files: dict[str, str] = {}
    providers = sorted((base / "providers").glob("*.json"), key=lambda p: (p.stem != "us-east-1", p.stem))
    for region in providers:
        for rtype, digest in json.loads(region.read_text()).items():
            files.setdefault(rtype, digest)
    return {rtype: json.loads((base / "resources" / f"{digest}.json").read_text())
            for rtype, digest in sorted(files.items())}


def writable_properties(schema: dict) -> list[str]:
    """Dotted paths of the properties a template can set, following $ref into definitions."""
    definitions = schema.get("definitions", {})
    read_only = {p.removeprefix("/properties/").replace("/", ".") for p in schema.get("readOnlyProperties", ())}
    out: list[str] = []

    def walk(node: dict, prefix: str, seen: frozenset, depth: int) -> None:
        if depth > 10 or not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                walk(definitions.get(name, {}), prefix, seen | {name}, depth + 1)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], prefix, seen, depth + 1)
        for key in ("oneOf", "anyOf", "allOf"):
            for option in node.get(key) or ():
                walk(option, prefix, seen, depth + 1)
        for name, child in (node.get("properties") or {}).items():
            path = f"{prefix}{name}"
            if path in read_only:
                continue
            out.append(path)
            walk(child, f"{path}.", seen, depth + 1)

    walk({"properties": schema.get("properties", {})}, "", frozenset(), 0)
    return sorted(set(out))


def topics_of(paths: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in paths:
        name = path.rsplit(".", 1)[-1]
        for topic, pattern in TOPICS.items():
            if not pattern.search(name):
                continue
            if topic == "credentials" and NOT_A_CREDENTIAL.search(name):
                continue
            found.setdefault(topic, []).append(path)
    return found


def inventory() -> dict[str, dict[str, list[str]]]:
    return {rtype: topics_of(writable_properties(schema)) for rtype, schema in schemas().items()}


def render(inv: dict[str, dict[str, list[str]]]) -> str:
    from cfnlint.version import __version__ as cfn_lint_version
    doc = {
        "source": f"CloudFormation resource provider schemas shipped with cfn-lint {cfn_lint_version}",
        "generated_by": "scripts/inventory.py",
        "topics": sorted(TOPICS),
        "types": {rtype: sorted(topics) for rtype, topics in inv.items()},
    }
    return json.dumps(doc, indent=0, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed inventory is stale")
    parser.add_argument("--explain", metavar="TYPE", nargs="+", help="the properties behind each topic")
    parser.add_argument("--uncovered", action="store_true",
                        help="types with topics that no rule judges and no exemption lists")
    args = parser.parse_args(argv)
    if args.explain:
        inv = inventory()
        for rtype in args.explain:
            print(rtype)
            for topic, paths in sorted(inv.get(rtype, {}).items()):
                print(f"  {topic}: {', '.join(paths)}")
        return 0
    if args.uncovered:
        sys.path.insert(0, str(ROOT))
        from dpguard.inventory import exemptions, judged_types, resource_types
        from dpguard.rules import catalogue
        judged, exempt = judged_types(catalogue()), exemptions()
        for rtype, topics in sorted(resource_types().items()):
            if topics and rtype not in judged and rtype not in exempt:
                print(f"{rtype}\t{','.join(topics)}")
        return 0
    text = render(inventory())
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run .venv/bin/python scripts/inventory.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    types = json.loads(text)["types"]
    print(f"wrote {OUT.relative_to(ROOT)}: {len(types)} types, {sum(1 for t in types.values() if t)} with "
          "security-relevant properties")
    return 0


if __name__ == "__main__":
    sys.exit(main())

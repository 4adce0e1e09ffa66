"""Secret values wherever a template writes them (clause 7, and clause 2 for credentials): AWS
access keys, PEM private keys and a few token formats that cannot be mistaken for anything else,
in any string of any resource, output, parameter default, mapping or metadata.

Precision comes before recall: a string is reported only when it has the exact shape of a known
secret format. No entropy guessing, and AWS's documented example keys (AKIAIOSFODNN7EXAMPLE,
wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY) and obvious placeholders (ghp_xxxx...) are not reported.
An access key id is AKIA/ASIA and 16 base32 characters with at least one digit: a word in capitals
(ASIAPACIFICSTACKS) has none, while about 96% of real ids do. A 40-character secret access key is
reported only next to its key id or assigned to an aws_secret_access_key name; JWTs are not
reported (most in templates are public, e.g. anonymous API keys).

The scan runs over every template, so it is built to be cheap: one walk collects the template's
longer strings, a handful of substring tests over their concatenation rule out almost every
template, and only a template that contains a marker is walked again with paths and regexes.

Properties that another rule judges as a credential (a function's environment, a database
password, user data, CloudFormation::Authentication metadata ...) are registered with `cover()`
by that rule's module, so each exposed value is reported once, by the rule that knows most about it.
"""
from __future__ import annotations

import marshal
import re
from typing import Any, Iterable, NamedTuple

from ..engine.lazy_re import LazyPattern
from ..engine.findings import violation
from . import rule


class Exposed(NamedTuple):
    kind: str   # "an AWS access key id", ...
    shown: str  # a redacted form that never contains the secret ("AKIA…WXYZ")


# ---------------------------------------------------------------- secret formats

# Shortest string that can hold any format below (an access key id is 20 characters).
MIN_SECRET_LENGTH = 20

AWS_KEY_ID = LazyPattern(r"(?<![A-Z0-9])((?:AKIA|ASIA)[A-Z2-7]{16})(?![A-Z0-9])")
AWS_SECRET_KEY = LazyPattern(r"(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
AWS_SECRET_ASSIGNED = LazyPattern(
    r"(?i:aws_?secret_?access_?key)[\"']?\s*(?:=|:|\s)\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
PEM_HEADER = LazyPattern(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----")
PEM_HEADER_LINE = LazyPattern(r"[ \t]*[A-Za-z][A-Za-z-]*: [^\n]*\n")  # Proc-Type:, DEK-Info:
PEM_BODY = LazyPattern(r"(?:[A-Za-z0-9+/=]|\s|\\n)+")
PEM_MIN_BODY = 64  # base64 characters: a placeholder ("...", "<key>") has none
GITHUB = LazyPattern(r"(?<![A-Za-z0-9_])(gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])")
SLACK = LazyPattern(r"(?<![A-Za-z0-9-])(xox[abp]-\d{1,14}(?:-\d{6,14}){1,2}-[A-Za-z0-9]{24,64})(?![A-Za-z0-9-])")
SLACK_WEBHOOK = LazyPattern(r"hooks\.slack\.com/services/(T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24})(?![A-Za-z0-9])")
STRIPE = LazyPattern(r"(?<![A-Za-z0-9_])([sr]k_live_[A-Za-z0-9]{24,99})(?![A-Za-z0-9_])")
GOOGLE = LazyPattern(r"(?<![A-Za-z0-9_-])(AIza[A-Za-z0-9_-]{35})(?![A-Za-z0-9_-])")
PLACEHOLDER_RUN = LazyPattern(r"(.)\1{7}")  # xxxxxxxx, 00000000: a placeholder, not a token

# (marker, regex, kind, characters of the match shown before the ellipsis); the marker is a
# substring of every match, tested before the regex runs.
TOKENS = (
    ("gh", GITHUB, "a GitHub token", 4),
    ("xox", SLACK, "a Slack token", 5),
    ("hooks.slack.com", SLACK_WEBHOOK, "a Slack webhook URL", 0),
    ("k_live_", STRIPE, "a Stripe live secret key", 8),
    ("AIza", GOOGLE, "a Google API key", 4),
)
# Cheap tests that rule a string out: every secret found below contains one of these.
MARKERS = ("AKIA", "ASIA", "-----BEGIN", "SECRET_ACCESS_KEY", "secret_access_key", "ecretAccessKey",
           "k_live_", "AIza", "hooks.slack.com")
MARKER_PATTERNS = (LazyPattern(r"gh[pousr]_|github_pat_"), LazyPattern(r"xox[abp]-"))
# The same tests over a marshalled template (bytes), fastest first; a few regexes with a
# literal prefix cost less than several substring searches.
BYTE_MARKERS = (b"-----BEGIN", b"hooks.slack.com", b"SECRET_ACCESS_KEY", b"secret_access_key", b"k_live_")
BYTE_PATTERNS = (re.compile(rb"A(?:KIA|SIA|Iza)"), re.compile(rb"gh[pousr]_|github_pat_"),
                 re.compile(rb"xox[abp]-"))


def may_hold_secret(text: str) -> bool:
    """False when `text` certainly holds none of the formats `exposed_secrets` finds."""
    for marker in MARKERS:
        if marker in text:
            return True
    return any(p.search(text) for p in MARKER_PATTERNS)


def _placeholder(value: str) -> bool:
    return "EXAMPLE" in value or "example" in value or PLACEHOLDER_RUN.search(value) is not None


def _secret_key(text: str) -> bool:
    """Does `text` hold a 40-character AWS secret access key (mixed case and digits, as AWS
    generates them; not a documented example)?"""
    for m in AWS_SECRET_KEY.finditer(text):
        key = m.group(1)
        if not _placeholder(key) and any(c.islower() for c in key) and any(c.isupper() for c in key) \
                and any(c.isdigit() for c in key):
            return True
    return False


def _redacted(secret: str, shown: int) -> str:
    return f"{secret[:shown]}…{secret[-4:]}" if shown else "…"


def pem_private_key(text: str, following: Iterable[str] = ()) -> Exposed | None:
    """A PEM private key block with a real body. `following` are the strings after `text` when
    it is one piece of a list (Fn::Join pieces often hold one line of the key each)."""
    m = PEM_HEADER.search(text)
    if not m:
        return None
    rest = text[m.end():m.end() + 8192]
    body = _pem_body(rest)
    if body < PEM_MIN_BODY:
        for piece in following:
            rest += "\n" + piece
            body = _pem_body(rest)
            if body >= PEM_MIN_BODY or len(rest) > 8192:
                break
    if body < PEM_MIN_BODY:
        return None
    label = m.group(1).strip()
    what = {"RSA": "an RSA", "EC": "an EC", "DSA": "a DSA", "OPENSSH": "an OpenSSH",
            "ENCRYPTED": "an encrypted", "PGP": "a PGP", "": "a"}.get(label, f"a {label}")
    return Exposed(f"{what} private key", "-----BEGIN …PRIVATE KEY-----")


def _pem_body(rest: str) -> int:
    """Base64 characters of a PEM body (after optional header lines)."""
    rest = rest.lstrip().replace("\\n", "\n")
    while True:
        header = PEM_HEADER_LINE.match(rest)
        if not header:
            break
        rest = rest[header.end():]
    body = PEM_BODY.match(rest)
    if not body:
        return 0
    return sum(1 for c in body.group(0) if not c.isspace())


def exposed_secrets(text: str, siblings: Iterable[str] = (), following: Iterable[str] = ()) -> list[Exposed]:
    """Secrets of a known format in `text`. `siblings` are the other strings of the mapping
    `text` is in (an access key id's secret key is often the next value); `following` the
    strings after it in a list (see `pem_private_key`)."""
    found: list[Exposed] = []
    if "AKIA" in text or "ASIA" in text:
        for m in AWS_KEY_ID.finditer(text):
            key = m.group(1)
            if _placeholder(key) or not any(c.isdigit() for c in key[4:]):
                continue  # an example, or a word in capitals (ASIAPACIFICSTACKS...)
            paired = _secret_key(text) or any(_secret_key(s) for s in siblings)
            kind = "an AWS access key id with its secret access key" if paired else "an AWS access key id"
            found.append(Exposed(kind, _redacted(key, 4)))
    if not found and ("ECRET_ACCESS_KEY" in text or "ecret_access_key" in text or "ecretAccessKey" in text):
        for m in AWS_SECRET_ASSIGNED.finditer(text):
            if _secret_key(m.group(1)):
                found.append(Exposed("an AWS secret access key", "…"))
                break
    if "-----BEGIN" in text:
        pem = pem_private_key(text, following)
        if pem:
            found.append(pem)
    for marker, pattern, kind, shown in TOKENS:
        if marker in text:
            for m in pattern.finditer(text):
                token = m.group(1)
                if not _placeholder(token.split("_", 2)[-1] if "_" in token else token):
                    found.append(Exposed(kind, _redacted(token, shown)))
    return found


def describe(found: list[Exposed]) -> str:
    """'an AWS access key id (AKIA…WXYZ) and a GitHub token (ghp_…1234)'."""
    parts = [f"{e.kind} ({e.shown})" if e.shown not in ("…", "") else e.kind for e in dict.fromkeys(found)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# ---------------------------------------------------------------- what other rules judge

# Resource type ("*": every type) -> key paths below the resource ("Properties", ...; "*" for
# any list index) whose values another rule judges with `exposed_secrets` or as a credential.
COVERED: dict[str, list[tuple[str, ...]]] = {}


def cover(rtype: str, *paths: str) -> None:
    """Leave the values at `paths` (dotted property paths, `*` for list items, or starting with
    "Metadata.") of resources of `rtype` to the rule that judges them there."""
    for path in paths:
        parts = tuple(path.split("."))
        COVERED.setdefault(rtype, []).append(parts if parts[0] == "Metadata" else ("Properties",) + parts)


def _covered(rtype: str, path: list) -> bool:
    covers = COVERED.get(rtype, []) + COVERED.get("*", [])
    if not covers:
        return False
    keys, skip_index = [], False
    for part in path:  # the path as a rule sees it: without Fn::If and its branch index
        if skip_index and isinstance(part, int):
            skip_index = False
            continue
        skip_index = part == "Fn::If"
        if isinstance(part, str) and part.startswith("Fn::"):
            continue
        keys.append(part)
    for parts in covers:
        if len(keys) >= len(parts) and all(
                want == got or (want == "*" and isinstance(got, int)) for want, got in zip(parts, keys)):
            return True
    return False


# ---------------------------------------------------------------- the scan

def _long_strings(node: Any) -> list[str]:
    """Every string of at least MIN_SECRET_LENGTH characters in a parsed template (values,
    not keys). One iterative walk, no recursion."""
    out: list[str] = []
    stack = [node]
    pop, extend, add = stack.pop, stack.extend, out.append
    while stack:
        current = pop()
        kind = type(current)
        if kind is dict:
            extend(current.values())
        elif kind is list:
            extend(current)
        elif kind is str and len(current) >= MIN_SECRET_LENGTH:
            add(current)
    return out


def node_may_hold_secret(node: Any, blob: bytes | None = None) -> bool:
    """False when no string under `node` (a parsed template or part of one) can hold a secret.
    marshal writes every string's characters out in C, far faster than a walk in Python; a
    node it cannot write (a type YAML made that JSON has not) is walked instead. `blob`: the
    node's marshal bytes, when the caller has them."""
    try:
        blob = blob or marshal.dumps(node)
    except (ValueError, RecursionError):
        return may_hold_secret("\n".join(_long_strings(node)))
    for marker in BYTE_MARKERS:
        if marker in blob:
            return True
    return any(p.search(blob) for p in BYTE_PATTERNS)


def _locate(node: Any, path: list, found: list, siblings: tuple = (), following: tuple = ()) -> None:
    """(path, exposed secrets) for each string under `node` that holds a secret."""
    if isinstance(node, dict):
        strings = tuple(v for v in node.values() if isinstance(v, str))
        for key, value in node.items():
            _locate(value, path + [key], found, strings if isinstance(value, str) else ())
    elif isinstance(node, list):
        for index, item in enumerate(node):
            rest = tuple(s for s in node[index + 1:index + 65] if isinstance(s, str)) \
                if isinstance(item, str) and "-----BEGIN" in item else ()
            _locate(item, path + [index], found, following=rest)
    elif isinstance(node, str) and len(node) >= MIN_SECRET_LENGTH and may_hold_secret(node):
        secrets = exposed_secrets(node, (s for s in siblings if s is not node), following)
        if secrets:
            found.append((path, secrets))


EXPOSED = "is written in the template: regenerate it, and keep it in Secrets Manager"
SECTIONS = ("Parameters", "Mappings", "Conditions", "Rules", "Outputs", "Metadata", "Description")


@rule("DP-NoSecretValues", clause=7, severity="error", types=["*"], scope="template",
      title="No secret value is written in a template",
      rationale="Clause 7: an exposed secret must be regenerated, and API secrets are accessible "
                "only to the application's principal developers; clause 2: no shared "
                "credentials. A template is read by everyone with access to its repository, its "
                "pipeline and CloudFormation's stack history, so a credential written in any of "
                "its strings is exposed, whatever the property is called: an AWS access key id "
                "(with or without its secret access key), a PEM private key, or a GitHub, Slack "
                "or Stripe token or a Google API key, in a property, a Fn::Sub or Fn::Join piece, "
                "metadata, a parameter default, a mapping or an output. Only these exact formats "
                "are reported (no guessing from randomness), and AWS's documented example keys "
                "are not. Values that other rules judge as credentials (function environments, "
                "database and service passwords, user data, CloudFormation::Authentication) are "
                "reported by those rules.",
      remediation="Regenerate the exposed credential first (it is in the repository's history), "
                  "then keep it in Secrets Manager and pass its ARN: "
                  "secretsmanager.Secret(self, 'ApiToken', encryption_key=secrets_key); "
                  "fn.add_environment('API_TOKEN_SECRET_ARN', secret.secret_arn); "
                  "secret.grant_read(fn). For AWS access, use a role instead of access keys.")
def no_secret_values(t):
    data = t.data
    if not node_may_hold_secret(data, t.marshalled):
        return
    resources = data.get("Resources")
    for section in SECTIONS:
        if section in data and node_may_hold_secret(data[section]):
            found: list = []
            _locate(data[section], [section], found)
            for path, secrets in found:
                yield violation("/".join(map(str, path)), f"{describe(secrets)} {EXPOSED}")
    if not isinstance(resources, dict):
        return
    for logical_id, raw in resources.items():
        r = t.resources.get(str(logical_id))
        if r is None or r.problem or not isinstance(raw, dict):
            continue  # judged by DP-ResourceReadable
        found = []
        if not node_may_hold_secret(raw):
            continue
        for key in ("Properties", "Metadata"):
            if key in raw:
                _locate(raw[key], [key], found)
        for path, secrets in found:
            if _covered(r.type, path):
                continue
            yield violation("/".join(map(str, path)), f"{describe(secrets)} {EXPOSED}",
                            logical_id=r.logical_id, template=t)

"""Secrets (clauses 2 and 7): Secrets Manager secrets use our keys and rotate; no credential is
written into a template, a plaintext SSM parameter or a function's environment; databases do not
use default credentials."""
from __future__ import annotations

import json
import re
from typing import Any

from ..engine.checks import customer_managed_key, expand_ifs, first, literal_name
from ..engine.findings import unverifiable, violation
from ..engine.values import ABSENT, TOKEN_RE, ResRef, Unknown, alternatives, as_bool, as_text
from . import rule

SECRET = "AWS::SecretsManager::Secret"
ROTATION_SCHEDULE = "AWS::SecretsManager::RotationSchedule"
TARGET_ATTACHMENT = "AWS::SecretsManager::SecretTargetAttachment"

# Dynamic references that CloudFormation resolves from an encrypted store at deploy time.
SECRET_REFERENCE = re.compile(r"\{\{resolve:(secretsmanager|ssm-secure):")
PLAIN_SSM_REFERENCE = "{{resolve:ssm:"
AWS_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")


# ---------------------------------------------------------------- what looks like a credential

# Parts of a name that say it holds a credential. Long ones are matched anywhere in the name with
# separators removed ("DBPASSWORD", "db-password"); short ones only as whole words ("DB_PASS",
# not "BYPASS_CACHE").
CREDENTIAL_PARTS = ("password", "passwd", "passphrase", "secret", "apikey", "privatekey",
                    "accesskey", "credential", "authtoken")
CREDENTIAL_WORDS = {"pass", "pwd", "token", "tokens"}
# Last words of names that point at a credential, or describe one, rather than hold it
# (DB_SECRET_ARN, TOKEN_TTL, PASSWORD_MIN_LENGTH).
REFERENCE_WORDS = {"arn", "arns", "name", "names", "id", "ids", "path", "url", "uri", "endpoint",
                   "region", "ttl", "expiry", "expiration", "seconds", "minutes", "hours", "days",
                   "length", "header", "type", "policy", "version", "field", "enabled", "prefix",
                   "location", "ref", "count", "limit", "timeout", "size", "bucket", "table",
                   "queue", "topic", "file", "dir"}
# An environment variable called ..._PARAMETER names an SSM parameter; an SSM parameter's own
# logical id ending in Param(eter) says nothing about what it holds.
ENV_REFERENCE_WORDS = REFERENCE_WORDS | {"param", "parameter", "parameters", "ssm"}
CDK_HASH = re.compile(r"[0-9A-F]{8}$")


def words(name: str) -> list[str]:
    """"DB_PASSWORD", "dbPassword", "APIKey", "/prod/db/password" -> lower-case words."""
    name = TOKEN_RE.sub(" ", name)
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


def names_credential(name: str, reference_words: set[str] = ENV_REFERENCE_WORDS) -> bool:
    parts = words(name)
    if not parts or parts[-1] in reference_words:
        return False
    joined = "".join(parts)
    return any(p in joined for p in CREDENTIAL_PARTS) or any(w in CREDENTIAL_WORDS for w in parts)


def is_inert_literal(text: str) -> bool:
    """Literal values that cannot be a credential: empty, booleans, numbers, ARNs."""
    stripped = text.strip()
    return (not stripped or as_bool(stripped) is not None or stripped.isdigit()
            or stripped.startswith("arn:"))


# ---------------------------------------------------------------- where a secret value comes from

def secret_sources(node: Any, tpl: Any, depth: int = 0) -> list[tuple[str, str]]:
    """Where each variant of a secret-valued property comes from, as (kind, detail):
    absent, dynamic (a Secrets Manager or SecureString reference), noecho (a NoEcho parameter
    without default), resource (another resource's attribute), literal, plain-ssm,
    plain-parameter, parameter-default, unknown."""
    if depth > 8:
        return [("unknown", "parameters are passed through too many nested stacks")]
    out: list[tuple[str, str]] = []
    for variant in expand_ifs(node, tpl):
        if variant is ABSENT:
            out.append(("absent", ""))
        elif isinstance(variant, Unknown):
            out.append(("unknown", variant.reason))
        elif isinstance(variant, dict) and list(variant) == ["Ref"] and variant["Ref"] in tpl.parameters:
            out.extend(_parameter_source(variant["Ref"], tpl, depth))
        else:
            for value in alternatives(variant, tpl):
                out.append(_value_source(value))
    return out


def _parameter_source(name: str, tpl: Any, depth: int) -> list[tuple[str, str]]:
    if tpl.parent is not None:
        given = tpl.parent.props.get("Parameters", {})
        if isinstance(given, dict) and name in given:
            return secret_sources(given[name], tpl.parent.template, depth + 1)
    param = tpl.parameters[name]
    if not isinstance(param, dict):
        return [("unknown", f"parameter {name} is malformed")]
    if as_bool(param.get("NoEcho")) is not True:
        return [("plain-parameter", name)]
    if "Default" in param or param.get("AllowedValues"):
        return [("parameter-default", name)]
    return [("noecho", name)]


def _value_source(value: Any) -> tuple[str, str]:
    if value is ABSENT:
        return ("absent", "")
    if isinstance(value, Unknown):
        return ("unknown", value.reason)
    if isinstance(value, ResRef):
        return ("resource", value.token())
    text = as_text(value)
    if text is None:
        return ("literal", "")
    if SECRET_REFERENCE.search(text):
        return ("dynamic", text)
    if PLAIN_SSM_REFERENCE in text:
        return ("plain-ssm", text)
    if TOKEN_RE.search(text):
        return ("resource", text)
    return ("literal", text)


SOURCE_PROBLEMS = {
    "literal": "is written in the template",
    "plain-ssm": "comes from a plaintext SSM parameter ({{resolve:ssm:...}})",
    "plain-parameter": "comes from parameter {detail}, which is not NoEcho",
    "parameter-default": "comes from NoEcho parameter {detail}, whose Default or AllowedValues "
                         "put it in the template",
}


def source_outcomes(path: str, what: str, sources: list[tuple[str, str]]):
    for kind, detail in sources:
        if kind == "unknown":
            yield unverifiable(path, f"cannot tell where {what} comes from: {detail}")
        elif kind in SOURCE_PROBLEMS:
            yield violation(path, f"{what} {SOURCE_PROBLEMS[kind].replace('{detail}', detail)}")


# ---------------------------------------------------------------- Secrets Manager

@rule("DP-SecretCmk", clause=7, severity="error", types=[SECRET],
      title="Secrets are encrypted with a customer-managed KMS key",
      rationale="Clause 7: API secrets get an added layer of encryption and are accessible only to "
                "the application's principal developers. Without KmsKeyId Secrets Manager uses "
                "the AWS managed key aws/secretsmanager, whose use any principal of the account "
                "with secret access gets; a key of our own has a key policy we control. Replicas "
                "in other regions need a key too.",
      remediation="secretsmanager.Secret(self, 'ApiKey', encryption_key=secrets_key)")
def secret_cmk(r, t):
    for path, key in r.values("KmsKeyId"):
        managed = customer_managed_key(r, key)
        if isinstance(managed, Unknown):
            yield unverifiable(path, f"cannot tell whether the key is customer managed: {managed.reason}")
        elif managed is not True:
            yield violation(path, "the secret is not encrypted with a customer-managed KMS key")
    for path, key in r.values("ReplicaRegions.*.KmsKeyId"):
        if path.endswith("ReplicaRegions/*/KmsKeyId") and key is ABSENT:
            continue  # no replicas
        managed = customer_managed_key(r, key)
        if isinstance(managed, Unknown):
            yield unverifiable(path, f"cannot tell whether the replica's key is customer managed: {managed.reason}")
        elif managed is not True:
            yield violation(path, "a replica of the secret is not encrypted with a customer-managed KMS key")


def _secret_of(value: Any, r) -> bool | None:
    """Does a SecretId value point at secret `r` (directly, through a target attachment, or by
    its literal name)? None when it cannot be told."""
    if isinstance(value, Unknown):
        return None
    target = r.template.resource_of(value)
    if target is r:
        return True
    if target is not None and target.type == TARGET_ATTACHMENT:
        found = [_secret_of(v, r) for _, v in target.values("SecretId")]
        return True if all(found) else (None if None in found else False)
    name = literal_name(r, "Name")
    text = as_text(value)
    if name and text and (text == name or text.split(":secret:")[-1].startswith(f"{name}-")):
        return True
    return False


@rule("DP-SecretRotation", clause=7, severity="error", types=[SECRET],
      title="Secrets rotate",
      rationale="Clause 7: an exposed secret must be regenerated. Scheduled rotation replaces "
                "secrets before a leak can be used for long. A secret rotates only when a "
                "RotationSchedule points at it (directly or through its target attachment). "
                "Master passwords that RDS manages itself (ManageMasterUserPassword) are rotated "
                "by RDS and are not Secret resources.",
      remediation="secret.add_rotation_schedule('Rotation', hosted_rotation="
                  "secretsmanager.HostedRotation.postgre_sql_single_user(), "
                  "automatically_after=Duration.days(30))\n"
                  "or db_instance.add_rotation_single_user()")
def secret_rotation(r, t):
    maybe: str | None = None
    for schedule in r.template.app.of_type(ROTATION_SCHEDULE):
        exists = schedule.deployed
        if exists is False:
            continue
        found = [_secret_of(v, r) for _, v in schedule.values("SecretId")]
        if not any(found):
            if None in found:
                maybe = maybe or f"the SecretId of {schedule.logical_id} cannot be followed"
            continue
        if exists is True and all(found):
            return
        maybe = maybe or f"{schedule.logical_id} rotates the secret only in some deployments"
    if maybe:
        yield unverifiable("Properties", f"cannot tell whether the secret rotates: {maybe}")
    else:
        yield violation("Properties", "no rotation schedule rotates the secret")


@rule("DP-SecretNoLiteralValue", clause=2, severity="error", types=[SECRET],
      title="Secret values are generated, not written in templates",
      rationale="Clause 2: no default or shared credentials, and clause 7: secrets only for the "
                "application's principal developers. A SecretString in the template is readable "
                "by anyone who can read the template, its repository and CloudFormation's stack "
                "history. Values assembled from other resources' attributes are accepted; a "
                "credential field with a literal value is not.",
      remediation="secretsmanager.Secret(self, 'DbCredentials', generate_secret_string="
                  "secretsmanager.SecretStringGenerator(secret_string_template='{\"username\":\"app\"}', "
                  "generate_string_key='password'))")
def secret_no_literal_value(r, t):
    path = "Properties/SecretString"
    for kind, detail in secret_sources(r.props.get("SecretString", ABSENT), r.template):
        if kind == "resource":
            field = _literal_credential_field(detail)
            if field:
                yield violation(path, f"the secret's {field!r} field is written in the template")
        elif kind == "literal" and not detail.strip():
            continue  # an empty placeholder, filled in later, holds nothing
        else:
            yield from source_outcomes(path, "the secret value", [(kind, detail)])


def _literal_credential_field(text: str) -> str | None:
    """In a JSON secret built from resource attributes, a credential-named field whose value
    has no reference in it."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    for key, value in doc.items():
        if isinstance(value, dict):
            nested = _literal_credential_field(json.dumps(value))
            if nested:
                return f"{key}.{nested}"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and names_credential(key):
            return key  # a number written as a JSON number is a literal, whatever its digits
        if isinstance(value, str) and names_credential(key) and not TOKEN_RE.search(value) \
                and not SECRET_REFERENCE.search(value) and not is_inert_literal(value):
            return key
    return None


# ---------------------------------------------------------------- database credentials

# Where each data service takes a password or auth token (dotted paths, `*` walks a list).
DB_PASSWORDS = {
    "AWS::RDS::DBInstance": ("MasterUserPassword",),
    "AWS::RDS::DBCluster": ("MasterUserPassword",),
    "AWS::Redshift::Cluster": ("MasterUserPassword",),
    "AWS::RedshiftServerless::Namespace": ("AdminUserPassword",),
    "AWS::DocDB::DBCluster": ("MasterUserPassword",),
    "AWS::DocDBElastic::Cluster": ("AdminUserPassword",),
    "AWS::DMS::Endpoint": ("Password", "MongoDbSettings.Password", "RedisSettings.AuthPassword"),
    "AWS::ElastiCache::ReplicationGroup": ("AuthToken",),
    "AWS::ElastiCache::User": ("Passwords.*", "AuthenticationMode.Passwords.*"),
    "AWS::MemoryDB::User": ("AuthenticationMode.Passwords.*",),
    "AWS::OpenSearchService::Domain": ("AdvancedSecurityOptions.MasterUserOptions.MasterUserPassword",),
    "AWS::Elasticsearch::Domain": ("AdvancedSecurityOptions.MasterUserOptions.MasterUserPassword",),
    "AWS::AmazonMQ::Broker": ("Users.*.Password",),
}


def raw_values(r, path: str) -> list[tuple[str, Any]]:
    """(property path, unresolved node) at `path`, through Fn::If branches and lists, so that
    `secret_sources` still sees a Ref to a (NoEcho) parameter as such."""
    nodes: list[tuple[str, Any]] = [("Properties", r.props)]
    for key in path.split("."):
        found = []
        for where, node in nodes:
            for variant in _branches(node, r.template):
                if key == "*" and isinstance(variant, list):
                    found.extend((f"{where}/{i}", item) for i, item in enumerate(variant))
                elif isinstance(variant, dict) and len(variant) == 1 and \
                        next(iter(variant)) in ("Ref", "Fn::ImportValue", "Fn::FindInMap", "Fn::Select"):
                    found.append((f"{where}/{key}", Unknown(f"{where} is not written out in the template")))
                elif key != "*" and isinstance(variant, dict) and key in variant:
                    found.append((f"{where}/{key}", variant[key]))
        nodes = found
    return nodes


def _branches(node: Any, tpl: Any, depth: int = 0) -> list:
    """The branches a node may take when it is an Fn::If (AWS::NoValue drops out); other nodes
    as they are."""
    if isinstance(node, dict) and len(node) == 1 and depth < 16:
        key, arg = next(iter(node.items()))
        if key == "Ref" and arg == "AWS::NoValue":
            return []
        if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str):
            decided = tpl.condition_value(arg[0])
            chosen = [arg[1]] if decided is True else [arg[2]] if decided is False else arg[1:]
            return [v for branch in chosen for v in _branches(branch, tpl, depth + 1)]
    return [node]


@rule("DP-DbNoLiteralPassword", clause=2, severity="error", types=list(DB_PASSWORDS),
      title="Database passwords are not written in templates",
      rationale="Clause 2: no default or shared credentials and no passwords on our servers. "
                "A password in the template, in a parameter without NoEcho, or in a parameter's "
                "default is visible to everyone who can read the template or the stack. This "
                "covers every data service that takes a password or auth token in the template: "
                "RDS, Aurora, Redshift, DocumentDB, DMS endpoints, ElastiCache and MemoryDB auth "
                "tokens and users, OpenSearch master users and Amazon MQ users. Accepted: a "
                "{{resolve:secretsmanager:...}} reference (what CDK writes), an SSM SecureString "
                "reference, a NoEcho parameter without default, or no password at all "
                "(ManageMasterUserPassword, the preferred option).",
      remediation="rds.DatabaseInstance(..., credentials=rds.Credentials.from_generated_secret('app_admin'))\n"
                  "or CfnDBInstance(..., manage_master_user_password=True)")
def db_no_literal_password(r, t):
    for prop in DB_PASSWORDS[r.type]:
        for path, node in raw_values(r, prop):
            sources = ([("unknown", node.reason)] if isinstance(node, Unknown)
                       else secret_sources(node, r.template))
            yield from source_outcomes(path, "the database password", sources)


DEFAULT_USERNAMES = {"admin", "root", "postgres", "sa", "master", "administrator", "user",
                     "awsuser", "dbadmin", "mysql", "test", "guest"}
SECRET_FIELD = re.compile(r"\{\{resolve:secretsmanager:⟨(\d+):([^⟩.]+)⟩:SecretString:([^:}]+)")


def _username_in_secret(text: str, r) -> str | Unknown | None:
    """The username a {{resolve:secretsmanager:<secret of the app>:SecretString:<field>}}
    reference yields when the secret's template fixes it (as CDK's generated secrets do)."""
    m = SECRET_FIELD.search(text)
    if not m:
        return None
    tpl = r.template.app.template(int(m.group(1)))
    secret = tpl.resources.get(m.group(2)) if tpl else None
    if secret is not None and secret.type == TARGET_ATTACHMENT:
        secret = tpl.resource_of(first(secret, "SecretId"), SECRET)
    if secret is None or secret.type != SECRET:
        return None
    for path in ("GenerateSecretString.SecretStringTemplate", "SecretString"):
        body = first(secret, path)
        if isinstance(body, str):
            try:
                doc = json.loads(body)
            except ValueError:
                return None
            value = doc.get(m.group(3)) if isinstance(doc, dict) else None
            return value if isinstance(value, str) else None
        if isinstance(body, Unknown):
            return body
    return None


@rule("DP-DbDefaultMasterUsername", clause=2, severity="warning",
      types=["AWS::RDS::DBInstance", "AWS::RDS::DBCluster", "AWS::Redshift::Cluster",
             "AWS::DocDB::DBCluster"],
      title="Databases do not use a default master username",
      rationale="Clause 2: no generic or default credentials. Names such as admin, root, "
                "postgres or sa are the first an attacker tries; a name of our own halves what a "
                "guessed password reveals. The username stored in a generated secret of the "
                "template is checked too.",
      remediation="rds.DatabaseInstance(..., credentials=rds.Credentials.from_generated_secret('orders_owner'))")
def db_default_master_username(r, t):
    for path, value in r.values("MasterUsername"):
        if value is ABSENT or isinstance(value, ResRef):
            continue
        if isinstance(value, Unknown):
            yield unverifiable(path, f"the master username cannot be known: {value.reason}")
            continue
        text = as_text(value) or ""
        if SECRET_REFERENCE.search(text):
            found = _username_in_secret(text, r)
            if isinstance(found, Unknown):
                yield unverifiable(path, f"the master username cannot be known: {found.reason}")
                continue
            text = found or ""
        if text.strip().lower() in DEFAULT_USERNAMES:
            yield violation(path, f"the master username {text!r} is a default account name")


# ---------------------------------------------------------------- credentials in plain sight

def _environment_outcomes(path: str, name: Any, node: Any, tpl: Any):
    """Judge one environment variable (name and value node)."""
    names = [as_text(n) for n in alternatives(name, tpl) if as_text(n) is not None]
    credential = any(names_credential(n) for n in names)
    label = names[0] if names else "a variable"
    for value in alternatives(node, tpl):
        if isinstance(value, Unknown):
            if credential:
                yield unverifiable(path, f"{label} looks like a credential and its value is known only "
                                         f"at deploy time ({value.reason}); pass a secret's ARN instead")
            continue
        text = as_text(value)
        if text is None or isinstance(value, ResRef):
            continue
        if AWS_ACCESS_KEY_ID.search(text):
            yield violation(path, f"{label} holds an AWS access key id")
        elif SECRET_REFERENCE.search(text):
            yield violation(path, f"{label} copies a secret's plaintext into the configuration; "
                                  f"pass the secret's ARN and read it at run time")
        elif credential and not TOKEN_RE.search(text) and not is_inert_literal(text):
            yield violation(path, f"{label} looks like a credential and has a literal value")


@rule("DP-NoSecretsInEnvironment", clause=2, severity="error",
      types=["AWS::Lambda::Function", "AWS::ECS::TaskDefinition"],
      title="Function and container environments hold no credentials",
      rationale="Clause 2 and clause 7: secrets are accessible only to the application's "
                "principal developers. Environment variables are shown in plain text to anyone "
                "who may read the function or task definition, and end up in the template. "
                "A variable whose name looks like a credential (password, secret, token, api key, "
                "private or access key) must not have a literal value, no value may look like "
                "an AWS access key id, and a {{resolve:secretsmanager:...}} reference is refused "
                "too because CloudFormation copies the secret's plaintext into the configuration. "
                "Secret ARNs, names and references to resources are accepted.",
      remediation="Pass the secret's ARN and read it at run time:\n"
                  "lambda_.Function(..., environment={'DB_SECRET_ARN': secret.secret_arn}); "
                  "secret.grant_read(fn)\n"
                  "For ECS: container secrets={'DB_PASSWORD': ecs.Secret.from_secrets_manager(secret, 'password')}")
def no_secrets_in_environment(r, t):
    if r.type == "AWS::Lambda::Function":
        for path, variables in r.values("Environment.Variables"):
            if variables is ABSENT:
                continue
            if not isinstance(variables, dict):
                reason = variables.reason if isinstance(variables, Unknown) else "it is not a mapping"
                yield unverifiable(path, f"the environment cannot be read: {reason}")
                continue
            for name, node in variables.items():
                yield from _environment_outcomes(f"{path}/{name}", name, node, r.template)
    else:
        for path, item in r.values("ContainerDefinitions.*.Environment.*"):
            if item is ABSENT:
                continue
            if not isinstance(item, dict):
                reason = item.reason if isinstance(item, Unknown) else "it is not a mapping"
                yield unverifiable(path, f"the environment cannot be read: {reason}")
                continue
            yield from _environment_outcomes(f"{path}/Value", item.get("Name"), item.get("Value", ABSENT),
                                             r.template)


@rule("DP-SsmNoPlaintextSecret", clause=2, severity="error", types=["AWS::SSM::Parameter"],
      title="Credentials are not kept in plaintext SSM parameters",
      rationale="Clause 7: secrets get an added layer of encryption. CloudFormation can only "
                "create String and StringList parameters, which are stored and shown in plain "
                "text; a parameter whose name or logical id says it holds a password, secret, "
                "token or key, with a literal value, puts that credential in plain sight. So does "
                "copying a secret into a parameter with {{resolve:secretsmanager:...}}, or a value "
                "that looks like an AWS access key id. Parameters that hold a secret's ARN are "
                "accepted.",
      remediation="Keep the credential in Secrets Manager: secretsmanager.Secret(self, 'ApiToken', "
                  "encryption_key=key); store its ARN in the parameter if others need to find it.")
def ssm_no_plaintext_secret(r, t):
    logical = CDK_HASH.sub("", r.logical_id)
    credential: bool | Unknown = names_credential(logical, REFERENCE_WORDS)
    for _, name in r.values("Name"):
        if isinstance(name, Unknown):
            credential = credential or name
        elif isinstance(name, str) and names_credential(name, REFERENCE_WORDS):
            credential = True
    for path, value in r.values("Value"):
        text = as_text(value) if not isinstance(value, ResRef) else None
        if text is not None and SECRET_REFERENCE.search(text):
            yield violation(path, "the parameter copies a secret into plain text")
        elif text is not None and AWS_ACCESS_KEY_ID.search(text):
            yield violation(path, "the parameter holds an AWS access key id")
        elif credential is False or isinstance(value, ResRef):
            continue
        elif isinstance(value, Unknown):
            yield unverifiable(path, f"the parameter looks like a credential and its value is known "
                                     f"only at deploy time: {value.reason}")
        elif text is not None and not TOKEN_RE.search(text) and not is_inert_literal(text):
            if credential is True:
                yield violation(path, "the parameter's name says it holds a credential, in plain text")
            else:
                yield unverifiable(path, f"the parameter has a literal value and its name cannot be "
                                         f"known: {credential.reason}")

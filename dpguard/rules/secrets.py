"""Secrets (clauses 2 and 7): Secrets Manager secrets use our keys and rotate; no credential is
written into a template, a plaintext SSM parameter or a function's environment; databases do not
use default credentials; service passwords and tokens, cfn-init authentication and instance user
data hold no credential written in the template.

Secret values in any other string of a template are found by DP-NoSecretValues (credentials.py);
the properties judged here are registered with `cover()` at the end of this module so that each
exposed value is reported once."""
from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

from ..engine.lazy_re import LazyPattern
from ..engine.checks import customer_managed_key, expand_ifs, first, literal_name
from ..engine.findings import unverifiable, violation
from ..engine.values import ABSENT, TOKEN_RE, ResRef, Unknown, alternatives, as_bool, as_text
from . import rule
from .credentials import cover, describe, exposed_secrets

SECRET = "AWS::SecretsManager::Secret"
ROTATION_SCHEDULE = "AWS::SecretsManager::RotationSchedule"
TARGET_ATTACHMENT = "AWS::SecretsManager::SecretTargetAttachment"

# Dynamic references that CloudFormation resolves from an encrypted store at deploy time.
SECRET_REFERENCE = LazyPattern(r"\{\{resolve:(secretsmanager|ssm-secure):")
PLAIN_SSM_REFERENCE = "{{resolve:ssm:"
AWS_ACCESS_KEY_ID = LazyPattern(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")


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
CDK_HASH = LazyPattern(r"[0-9A-F]{8}$")


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
        elif isinstance(variant, dict) and list(variant) == ["Ref"] and isinstance(variant["Ref"], str) \
                and variant["Ref"] in tpl.parameters:
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
    "AWS::AmazonMQ::Broker": ("Users.*.Password", "LdapServerMetadata.ServiceAccountPassword"),
    "AWS::Lightsail::Database": ("MasterUserPassword",),
    "AWS::Timestream::InfluxDBInstance": ("Password",),
    "AWS::Timestream::InfluxDBCluster": ("Password",),
}
DB_PASSWORDS["AWS::RDS::DBInstance"] += ("TdeCredentialPassword",)
DB_PASSWORDS["AWS::DMS::Endpoint"] += ("MicrosoftSqlServerSettings.Password", "OracleSettings.AsmPassword",
                                       "GcpMySQLSettings.Password", "KafkaSettings.SaslPassword",
                                       "KafkaSettings.SslClientKeyPassword")


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
                "tokens and users, OpenSearch master users, Amazon MQ users and LDAP service "
                "accounts, Lightsail databases and Timestream for InfluxDB. Accepted: a "
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
SECRET_FIELD = LazyPattern(r"\{\{resolve:secretsmanager:⟨(\d+):([^⟩.]+)⟩:SecretString:([^:}]+)")


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
        exposed = exposed_secrets(text) if len(text) >= 20 else []
        if AWS_ACCESS_KEY_ID.search(text):
            yield violation(path, f"{label} holds an AWS access key id")
        elif exposed:
            yield violation(path, f"{label} holds {describe(exposed)}")
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
        elif text is not None and len(text) >= 20 and exposed_secrets(text):
            yield violation(path, f"the parameter holds {describe(exposed_secrets(text))}")
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


# ---------------------------------------------------------------- service credentials

# Where services other than databases take a password, token or key in the template, and what
# each one is called in a finding (dotted paths, `*` walks a list).
SERVICE_CREDENTIALS: dict[str, dict[str, str]] = {
    "AWS::Amplify::App": {"AccessToken": "the repository access token",
                          "OauthToken": "the repository OAuth token",
                          "BasicAuthConfig.Password": "the basic-auth password",
                          "AutoBranchCreationConfig.BasicAuthConfig.Password":
                              "the basic-auth password of automatically created branches"},
    "AWS::Amplify::Branch": {"BasicAuthConfig.Password": "the basic-auth password"},
    "AWS::ApiGateway::ApiKey": {"Value": "the API key"},
    "AWS::AppStream::DirectoryConfig": {"ServiceAccountCredentials.AccountPassword":
                                        "the service account password"},
    "AWS::BackupGateway::Hypervisor": {"Password": "the hypervisor password"},
    "AWS::CodeBuild::SourceCredential": {"Token": "the source provider token"},
    "AWS::CodePipeline::Pipeline": {"Stages.*.Actions.*.Configuration.OAuthToken": "the GitHub OAuth token"},
    "AWS::CodePipeline::Webhook": {"AuthenticationConfiguration.SecretToken": "the webhook secret token"},
    "AWS::CodeStar::GitHubRepository": {"RepositoryAccessToken": "the GitHub access token"},
    "AWS::Connect::User": {"Password": "the user's password"},
    "AWS::DataSync::LocationAzureBlob": {"AzureBlobSasConfiguration.AzureBlobSasToken": "the Azure SAS token"},
    "AWS::DataSync::LocationFSxONTAP": {"Protocol.SMB.Password": "the SMB password"},
    "AWS::DataSync::LocationFSxWindows": {"Password": "the file server password"},
    "AWS::DataSync::LocationHDFS": {"KerberosKeytab": "the Kerberos keytab"},
    "AWS::DataSync::LocationObjectStorage": {"SecretKey": "the object storage secret key"},
    "AWS::DataSync::LocationSMB": {"Password": "the SMB password", "KerberosKeytab": "the Kerberos keytab"},
    "AWS::DirectoryService::MicrosoftAD": {"Password": "the directory's Admin password"},
    "AWS::DirectoryService::SimpleAD": {"Password": "the directory's Administrator password"},
    "AWS::EC2::VerifiedAccessTrustProvider": {"OidcOptions.ClientSecret": "the OIDC client secret",
                                              "NativeApplicationOidcOptions.ClientSecret": "the OIDC client secret"},
    "AWS::ElasticLoadBalancingV2::Listener": {"DefaultActions.*.AuthenticateOidcConfig.ClientSecret":
                                              "the OIDC client secret"},
    "AWS::ElasticLoadBalancingV2::ListenerRule": {"Actions.*.AuthenticateOidcConfig.ClientSecret":
                                                  "the OIDC client secret"},
    "AWS::EMR::Cluster": {"KerberosAttributes.KdcAdminPassword": "the KDC admin password",
                          "KerberosAttributes.ADDomainJoinPassword": "the AD domain join password",
                          "KerberosAttributes.CrossRealmTrustPrincipalPassword": "the cross-realm trust password"},
    "AWS::Events::Connection": {"AuthParameters.ApiKeyAuthParameters.ApiKeyValue": "the API key",
                                "AuthParameters.BasicAuthParameters.Password": "the basic-auth password",
                                "AuthParameters.OAuthParameters.ClientParameters.ClientSecret":
                                    "the OAuth client secret"},
    "AWS::FSx::FileSystem": {"OntapConfiguration.FsxAdminPassword": "the fsxadmin password",
                             "WindowsConfiguration.SelfManagedActiveDirectoryConfiguration.Password":
                                 "the Active Directory service account password"},
    "AWS::FSx::StorageVirtualMachine": {"SvmAdminPassword": "the vsadmin password",
                                        "ActiveDirectoryConfiguration.SelfManagedActiveDirectoryConfiguration.Password":
                                            "the Active Directory service account password"},
    "AWS::Glue::Connection": {
        "ConnectionInput.ConnectionProperties.PASSWORD": "the connection password",
        "ConnectionInput.AuthenticationConfiguration.BasicAuthenticationCredentials.Password": "the connection password",
        "ConnectionInput.AuthenticationConfiguration.OAuth2Properties.OAuth2Credentials.UserManagedClientApplicationClientSecret":
            "the OAuth client secret",
        "ConnectionInput.AuthenticationConfiguration.OAuth2Properties.OAuth2Credentials.AccessToken": "the OAuth access token",
        "ConnectionInput.AuthenticationConfiguration.OAuth2Properties.OAuth2Credentials.RefreshToken": "the OAuth refresh token",
        "ConnectionInput.AuthenticationConfiguration.OAuth2Properties.OAuth2Credentials.JwtToken": "the JWT"},
    "AWS::IAM::ServerCertificate": {"PrivateKey": "the certificate's private key"},
    "AWS::KinesisFirehose::DeliveryStream": {
        "RedshiftDestinationConfiguration.Password": "the Redshift password",
        "SplunkDestinationConfiguration.HECToken": "the Splunk HEC token",
        "HttpEndpointDestinationConfiguration.EndpointConfiguration.AccessKey": "the HTTP endpoint access key",
        "SnowflakeDestinationConfiguration.PrivateKey": "the Snowflake private key",
        "SnowflakeDestinationConfiguration.KeyPassphrase": "the Snowflake key passphrase"},
    "AWS::ManagedBlockchain::Member": {
        "MemberConfiguration.MemberFrameworkConfiguration.MemberFabricConfiguration.AdminPassword":
            "the Fabric admin password"},
    "AWS::Pinpoint::ADMChannel": {"ClientSecret": "the ADM client secret"},
    "AWS::Pinpoint::APNSChannel": {"PrivateKey": "the APNs private key", "TokenKey": "the APNs token key"},
    "AWS::Pinpoint::APNSSandboxChannel": {"PrivateKey": "the APNs private key", "TokenKey": "the APNs token key"},
    "AWS::Pinpoint::APNSVoipChannel": {"PrivateKey": "the APNs private key", "TokenKey": "the APNs token key"},
    "AWS::Pinpoint::APNSVoipSandboxChannel": {"PrivateKey": "the APNs private key", "TokenKey": "the APNs token key"},
    "AWS::Pinpoint::BaiduChannel": {"SecretKey": "the Baidu secret key"},
    "AWS::Pinpoint::GCMChannel": {"ApiKey": "the FCM API key", "ServiceJson": "the FCM service account key"},
    "AWS::QuickSight::DataSource": {
        "Credentials.CredentialPair.Password": "the data source password",
        "Credentials.KeyPairCredentials.PrivateKey": "the data source private key",
        "Credentials.KeyPairCredentials.PrivateKeyPassphrase": "the private key passphrase",
        "Credentials.OAuthClientCredentials.ClientSecret": "the OAuth client secret"},
    "AWS::SageMaker::Workforce": {"OidcConfig.ClientSecret": "the OIDC client secret"},
    "AWS::SES::EmailIdentity": {"DkimSigningAttributes.DomainSigningPrivateKey": "the DKIM signing key"},
    "AWS::Transfer::Certificate": {"PrivateKey": "the certificate's private key"},
}


@rule("DP-NoLiteralCredential", clause=2, severity="error", types=list(SERVICE_CREDENTIALS),
      title="Service passwords, tokens and keys are not written in templates",
      rationale="Clause 2: no default or shared credentials and no passwords on our servers; "
                "clause 7: secrets only for the application's principal developers. Services other "
                "than databases take credentials in the template too: Firehose's Redshift password, "
                "Splunk HEC token, HTTP endpoint access key and Snowflake key; Directory Service "
                "admin passwords; Amplify repository tokens and basic-auth passwords; OIDC client "
                "secrets of load balancers and Verified Access; EventBridge connections; CodeBuild, "
                "CodePipeline and CodeStar tokens; FSx, EMR, DataSync, Glue, QuickSight, AppStream, "
                "Pinpoint, SES DKIM and certificate private keys, and API Gateway API key values. "
                "A value in the template, in a parameter without NoEcho, or in a parameter's "
                "default is visible to everyone who can read the template or the stack. Accepted "
                "as DP-DbNoLiteralPassword accepts them: a {{resolve:secretsmanager:...}} or "
                "SecureString reference, a NoEcho parameter without default, another resource's "
                "attribute, or no credential at all (AWS generates API key values when Value is "
                "absent).",
      remediation="Pass a secret, never a literal (SecretValue writes a {{resolve:secretsmanager:...}} reference):\n"
                  "amplify_alpha.App(self, 'Site', source_code_provider=amplify_alpha.GitHubSourceCodeProvider("
                  "owner='org', repository='site', oauth_token=SecretValue.secrets_manager('github-token')), "
                  "basic_auth=amplify_alpha.BasicAuth.from_generated_password('preview'))\n"
                  "elbv2.ListenerAction.authenticate_oidc(..., client_secret=SecretValue.secrets_manager('oidc'))\n"
                  "events.Connection(self, 'Api', authorization=events.Authorization.api_key('x-api-key', "
                  "SecretValue.secrets_manager('partner-api-key')))\n"
                  "directoryservice.CfnMicrosoftAD(self, 'Ad', password=SecretValue.secrets_manager("
                  "'ad-admin', json_field='password').unsafe_unwrap(), ...)\n"
                  "firehose CfnDeliveryStream: splunk_destination_configuration=...(hec_token="
                  "SecretValue.secrets_manager('splunk-hec').unsafe_unwrap()), or secrets_manager_configuration")
def no_literal_credential(r, t):
    for prop, what in SERVICE_CREDENTIALS[r.type].items():
        for path, node in raw_values(r, prop):
            sources = ([("unknown", node.reason)] if isinstance(node, Unknown)
                       else secret_sources(node, r.template))
            yield from source_outcomes(path, what, sources)


# ---------------------------------------------------------------- cfn-init authentication

AUTHENTICATION = "AWS::CloudFormation::Authentication"
# cfn-init's credential fields (matched without regard to case) and what a finding calls them.
AUTHENTICATION_FIELDS = {"accesskeyid": "access key id", "secretkey": "secret key", "password": "password"}
ACCESS_KEY_SECRET = ".SecretAccessKey⟩"


def _authentication_outcomes(r, node: Any):
    tpl = r.template
    base = f"Metadata/{AUTHENTICATION}"
    for block in expand_ifs(node, tpl):
        if isinstance(block, Unknown):
            yield unverifiable(base, f"the authentication block cannot be read: {block.reason}")
            continue
        if not isinstance(block, dict):
            yield unverifiable(base, "the authentication block is not a mapping of named entries")
            continue
        for name, entry in block.items():
            for variant in alternatives(entry, tpl) if not isinstance(entry, dict) else [entry]:
                if isinstance(variant, Unknown):
                    yield unverifiable(f"{base}/{name}", f"entry {name} cannot be read: {variant.reason}")
                    continue
                if not isinstance(variant, dict):
                    yield unverifiable(f"{base}/{name}", f"entry {name} is not a mapping")
                    continue
                yield from _authentication_entry(f"{base}/{name}", str(name), variant, tpl)


def _authentication_entry(path: str, name: str, entry: dict, tpl: Any):
    for key, value in entry.items():
        field = AUTHENTICATION_FIELDS.get(key.lower()) if isinstance(key, str) else None
        if field is None:
            continue
        where, what = f"{path}/{key}", f"the {field} of authentication entry {name}"
        sources = secret_sources(value, tpl)
        for kind, detail in sources:
            if kind == "resource" and field == "secret key" and detail.endswith(ACCESS_KEY_SECRET):
                yield violation(where, f"{what} copies an IAM access key's secret into the resource's "
                                       f"metadata, which CloudFormation shows in plain text to anyone who "
                                       f"may describe the stack's resources; use roleName instead")
        yield from source_outcomes(where, what, sources)


@rule("DP-CfnAuthNoLiteralCredentials", clause=2, severity="error", types=["*"], scope="template",
      title="cfn-init authentication uses a role, not credentials written in the template",
      rationale="Clause 2: no shared credentials and no passwords on our servers. An "
                "AWS::CloudFormation::Authentication entry in a resource's Metadata tells cfn-init "
                "how to download files and sources: with an accessKeyId and secretKey (type S3), "
                "a username and password (type basic), or the instance's role (roleName). "
                "Metadata is shown in plain text to anyone who may describe the stack's resources, "
                "so a literal key or password there, one from a parameter without NoEcho or with a "
                "default, or an IAM access key's SecretAccessKey copied in, is exposed. Entries "
                "with roleName pass; NoEcho parameters without default and dynamic references "
                "are accepted as DP-DbNoLiteralPassword accepts them.",
      remediation="Give cfn-init the instance's role instead of keys: "
                  "ec2.Instance(..., role=role, init=ec2.CloudFormationInit.from_elements(...)); "
                  "bucket.grant_read(role) (CDK writes an S3 entry with roleName), or in a raw template "
                  "\"AWS::CloudFormation::Authentication\": {\"S3Access\": {\"type\": \"S3\", "
                  "\"roleName\": {\"Ref\": \"InstanceRole\"}, \"buckets\": [\"my-bucket\"]}}")
def cfn_auth_no_literal_credentials(t):
    for r in t.resources.values():
        if r.problem:
            continue
        meta = r.raw.get("Metadata")
        if type(meta) is not dict or AUTHENTICATION not in meta:
            continue
        for outcome in _authentication_outcomes(r, meta[AUTHENTICATION]):
            yield outcome._replace(logical_id=r.logical_id, template=t)


# ---------------------------------------------------------------- user data

USER_DATA = {"AWS::EC2::Instance": "UserData",
             "AWS::EC2::LaunchTemplate": "LaunchTemplateData.UserData",
             "AWS::AutoScaling::LaunchConfiguration": "UserData"}
MAX_USER_DATA = 256 * 1024  # EC2 takes 16 KB; anything much larger is not user data
BASE64_TEXT = LazyPattern(r"[A-Za-z0-9+/]+={0,2}")
SUB_VARIABLE = LazyPattern(r"\$\{([^}]*)\}")
# A value in the template that the script text stands in for: ⟦index⟧.
PLACEHOLDER = LazyPattern(r"⟦(\d+)⟧")
_VALUE = r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"';|&)]+)"
# Commands that set a password from a value written on the command line. Each pattern is tried
# only when its marker is in the script.
SCRIPT_PASSWORDS = (
    ("passwd", "echo ... | passwd", LazyPattern(
        r"\becho\s+(?:-[a-zA-Z]+\s+)*(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'|;&]+)\s*\|\s*(?:sudo\s+)?passwd\b")),
    ("chpasswd", "echo user:password | chpasswd", LazyPattern(
        r"\becho\s+(?:-[a-zA-Z]+\s+)*[\"']?[\w.@-]+:(?P<value>[^\s\"'|;&]+)[\"']?\s*\|\s*(?:sudo\s+)?chpasswd\b")),
    ("mysql", "mysql -p<password>", LazyPattern(
        r"\b(?:mysql|mysqladmin|mysqldump|mariadb)\b[^\n|;&]*?\s-p" + _VALUE)),
    ("mysqladmin", "mysqladmin password", LazyPattern(
        r"\bmysqladmin\b[^\n|;&]*?\spassword\s+" + _VALUE)),
    ("--password", "--password", LazyPattern(r"\s--password(?:=|\s+)" + _VALUE)),
    ("aws_secret_access_key", "aws configure set aws_secret_access_key", LazyPattern(
        r"\baws\s+configure\s+set\s+(?:\S+\.)?aws_secret_access_key\s+" + _VALUE)),
    ("=", "", LazyPattern(
        r"^[ \t]*(?:export[ \t]+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=" + _VALUE, re.MULTILINE)),
)
CLOUD_CONFIG_PASSWORD = LazyPattern(r"^[ \t]*(?:password|plain_text_passwd)[ \t]*:[ \t]*" + _VALUE, re.MULTILINE)


class _Script:
    """User data as the instance receives it: literal text, with ⟦n⟧ where a value of the
    template (a parameter, a resource attribute, a look-up) is put in at deploy time."""

    def __init__(self, tpl: Any):
        self.tpl = tpl
        self.values: list[Any] = []

    def text(self, node: Any, depth: int = 0) -> str | Unknown:
        if depth > 32:
            return Unknown("the user data is nested too deeply")
        if isinstance(node, str):
            return node
        if isinstance(node, (int, float, bool)):
            return as_text(node) or ""
        if not (isinstance(node, dict) and len(node) == 1):
            return Unknown("a piece of the user data is neither a string nor a function")
        key, arg = next(iter(node.items()))
        if key == "Fn::Base64":
            return self.text(arg, depth + 1)
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) \
                and isinstance(arg[1], list):
            pieces = [self.text(item, depth + 1) for item in arg[1]]
            bad = next((p for p in pieces if isinstance(p, Unknown)), None)
            return bad if bad is not None else arg[0].join(pieces)
        if key == "Fn::Sub":
            text, variables = (arg if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict)
                               else (arg, {}))
            if not isinstance(text, str):
                return Unknown("Fn::Sub needs a string")
            return SUB_VARIABLE.sub(lambda m: self._variable(m.group(1).strip(), variables, depth), text)
        values = alternatives(node, self.tpl)
        if len(values) == 1 and isinstance(values[0], str) and not TOKEN_RE.search(values[0]):
            return values[0]
        return self._placeholder(node)

    def _variable(self, name: str, variables: dict, depth: int) -> str:
        if name.startswith("!"):
            return "${" + name[1:] + "}"  # a literal ${...} for the shell
        if name in variables:
            text = self.text(variables[name], depth + 1)
            return text if isinstance(text, str) else self._placeholder(variables[name])
        if "." in name:
            resource, attr = name.split(".", 1)
            return self._placeholder({"Fn::GetAtt": [resource, attr]})
        return self._placeholder({"Ref": name})

    def _placeholder(self, node: Any) -> str:
        self.values.append(node)
        return f"⟦{len(self.values) - 1}⟧"


def _decoded(text: str) -> str | Unknown:
    """A literal UserData string is passed to EC2 as it is, so it is base64 already: decode it
    (gzip too, as cloud-init does), capped in size. Text that is not base64 is read as it is."""
    compact = text.replace("\n", "").replace("\r", "")
    if len(compact) < 8 or len(compact) % 4 or not BASE64_TEXT.fullmatch(compact):
        return text
    try:
        raw = base64.b64decode(compact, validate=True)
    except ValueError:
        return text
    if raw[:2] == b"\x1f\x8b":
        try:
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = inflate.decompress(raw, MAX_USER_DATA)
        except zlib.error as e:
            return Unknown(f"the user data is gzip data that cannot be read ({e})")
        if inflate.unconsumed_tail:
            return Unknown(f"the user data inflates to more than {MAX_USER_DATA // 1024} KiB")
    return raw.decode("utf-8", errors="replace")


def _script_value(value: str, script: _Script) -> list[tuple[str, str]]:
    """Where a password set in the script comes from, as secret_sources tells it; values the
    script computes at run time ($VAR, $(...)) are its own business."""
    if value[:1] in "\"'" and value[-1:] == value[:1]:
        value = value[1:-1]
    if "\\n" in value:
        value = value.split("\\n", 1)[0]  # echo -e "pw\npw" | passwd
    if SECRET_REFERENCE.search(value):
        return [("copied", "")]
    places = PLACEHOLDER.findall(value)
    if places:
        out = []
        for index in places:
            out.extend(secret_sources(script.values[int(index)], script.tpl))
        return out
    if "$" in value or "`" in value or is_inert_literal(value) or value.startswith(("/", "file:")):
        return []
    return [("literal", value)]


SCRIPT_SOURCE_PROBLEMS = {
    "literal": "is written in the template",
    "copied": "is copied in plain text from a dynamic reference",
    "plain-ssm": "comes from a plaintext SSM parameter",
    "plain-parameter": "comes from parameter {detail}, which is not NoEcho",
    "parameter-default": "comes from NoEcho parameter {detail}, whose Default or AllowedValues put it in the "
                         "template",
}


def _user_data_outcomes(path: str, text: str, script: _Script):
    exposed = exposed_secrets(text)
    if exposed:
        yield violation(path, f"the user data holds {describe(exposed)}")
    checks = list(SCRIPT_PASSWORDS)
    if text.lstrip().startswith("#cloud-config"):
        checks.append(("", "cloud-config password", CLOUD_CONFIG_PASSWORD))
    seen_lines: set[int] = set()
    for marker, how, pattern in checks:
        if marker not in text:
            continue
        for m in pattern.finditer(text):
            if "name" in m.groupdict() and not names_credential(m.group("name")):
                continue
            line = text.count("\n", 0, m.start("value")) + 1
            if line in seen_lines:
                continue
            if exposed and exposed_secrets(m.group("value")):
                continue  # reported above as the secret it is
            subject = m.group("name") if "name" in m.groupdict() else f"a password ({how})"
            where = f"line {line} of the user data sets {subject}"
            for kind, detail in _script_value(m.group("value"), script):
                if kind == "noecho":
                    yield unverifiable(path, f"{where} from NoEcho parameter {detail}; user data keeps it in "
                                             f"plain text on the instance and in the instance's attributes, "
                                             f"so read it from Secrets Manager at boot instead")
                elif kind == "unknown":
                    yield unverifiable(path, f"{where} whose value cannot be known: {detail}")
                elif kind in SCRIPT_SOURCE_PROBLEMS:
                    problem = SCRIPT_SOURCE_PROBLEMS[kind].replace('{detail}', detail)
                    yield violation(path, f"{where}, which {problem}; read it from Secrets Manager at boot")
                else:
                    continue
                seen_lines.add(line)


@rule("DP-UserDataNoSecrets", clause=2, severity="error", types=list(USER_DATA),
      title="User data holds no credentials",
      rationale="Clause 2: no passwords on our servers and no shared credentials; clause 7: an "
                "exposed secret must be regenerated. User data is stored in plain text: anyone "
                "allowed ec2:DescribeInstanceAttribute or to read the launch template can read it, "
                "every process on the instance can fetch it from the metadata service, and "
                "cloud-init keeps a copy on disk. So user data of instances, launch templates and "
                "launch configurations (Fn::Base64 of text, Fn::Sub or Fn::Join, or a literal "
                "base64 or gzip string, decoded here) must hold no AWS access key, private key or "
                "token, and no script line may set a password or key from a value written in the "
                "template (echo ... | passwd or chpasswd, mysql -p..., mysqladmin password, "
                "--password=, aws configure set aws_secret_access_key, export DB_PASSWORD=...). A "
                "password from a parameter is unverifiable even with NoEcho, because user data "
                "keeps it in plain text; a value the script reads at boot ($(aws secretsmanager "
                "get-secret-value ...)) passes. User data that is wholly chosen at deploy time "
                "cannot be judged.",
      remediation="Read the secret at boot with the instance's role, never pass it in user data:\n"
                  "user_data = ec2.UserData.for_linux(); user_data.add_commands("
                  "f\"DB_PASSWORD=$(aws secretsmanager get-secret-value --secret-id {secret.secret_name} "
                  "--query SecretString --output text)\"); secret.grant_read(instance.role)\n"
                  "ec2.Instance(self, 'Host', ..., user_data=user_data)")
def user_data_no_secrets(r, t):
    for path, node in raw_values(r, USER_DATA[r.type]):
        if isinstance(node, Unknown):
            yield unverifiable(path, f"the user data cannot be read: {node.reason}")
            continue
        for variant in expand_ifs(node, r.template):
            if variant is ABSENT:
                continue
            if isinstance(variant, Unknown):
                yield unverifiable(path, f"the user data cannot be read: {variant.reason}")
                continue
            script = _Script(r.template)
            text = script.text(variant)
            if isinstance(text, str) and isinstance(variant, str):
                text = _decoded(text)
            if isinstance(text, Unknown):
                yield unverifiable(path, f"the user data cannot be read: {text.reason}")
                continue
            whole = PLACEHOLDER.fullmatch(text.strip())
            if whole:
                chosen = [s for s in secret_sources(script.values[int(whole.group(1))], r.template)]
                reason = next((d for k, d in chosen if k == "unknown"), None) or "it is chosen at deploy time"
                yield unverifiable(path, f"the user data is not in the template ({reason}), so it cannot be "
                                         f"checked for credentials")
                continue
            yield from _user_data_outcomes(path, text, script)


# Properties judged above are left to these rules by DP-NoSecretValues (dpguard/rules/credentials.py).
cover("AWS::Lambda::Function", "Environment.Variables")
cover("AWS::ECS::TaskDefinition", "ContainerDefinitions.*.Environment")
cover("AWS::SSM::Parameter", "Value")
cover(SECRET, "SecretString")
cover("*", f"Metadata.{AUTHENTICATION}")
for _type, _paths in DB_PASSWORDS.items():
    cover(_type, *_paths)
for _type, _labels in SERVICE_CREDENTIALS.items():
    cover(_type, *_labels)
for _type, _path in USER_DATA.items():
    cover(_type, _path)

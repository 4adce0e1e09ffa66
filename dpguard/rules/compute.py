"""Build and compute services that hold or move data: CodeBuild projects (credentials, source
URLs, artifact encryption, logs), EKS clusters (secrets encryption, public endpoint, control-plane
logs), WorkSpaces volumes and DLM snapshot copies."""
from __future__ import annotations

from typing import Any, Iterator

from ..engine.lazy_re import LazyPattern
from ..engine.checks import (customer_managed_key, expand_ifs, leaves, nested_values, require,
                             tag_values)
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import (ABSENT, TOKEN_RE, ResRef, Unknown, _SUB_VAR, alternatives, as_bool,
                             as_text)
from . import rule
from .governance import NO_CMK_NEEDED
from .network import world_cidr
from .secrets import (SECRET_REFERENCE, is_inert_literal, names_credential, raw_values,
                      secret_sources, source_outcomes)

PROJECT = "AWS::CodeBuild::Project"
SOURCE_CREDENTIAL = "AWS::CodeBuild::SourceCredential"
EKS = "AWS::EKS::Cluster"
WORKSPACE = "AWS::WorkSpaces::Workspace"
DLM = "AWS::DLM::LifecyclePolicy"


def _text(value: Any) -> str | None:
    return None if isinstance(value, (ResRef, Unknown)) or value is ABSENT else as_text(value)


def _reason(value: Any) -> str:
    return value.reason if isinstance(value, Unknown) else "it has the wrong shape"


# ---------------------------------------------------------------- CodeBuild: credentials

# Values that are credentials whatever their variable is called, in one pattern (group name ->
# what to call it). None of them is shorter than SHORTEST_CREDENTIAL characters.
CREDENTIAL_VALUE = LazyPattern(
    r"(?P<aws>(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9]))"
    r"|(?P<key>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)"
    r"|(?P<github>(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,}))"
    r"|(?P<gitlab>(?<![A-Za-z0-9_])glpat-[A-Za-z0-9_-]{20,})"
    r"|(?P<slack>(?<![A-Za-z0-9_])xox[abprs]-[A-Za-z0-9-]{10,})")
CREDENTIAL_LABELS = {"aws": "an AWS access key id", "key": "a private key", "github": "a GitHub token",
                     "gitlab": "a GitLab token", "slack": "a Slack token"}
SHORTEST_CREDENTIAL = 15
SAFE_TYPES = ("PARAMETER_STORE", "SECRETS_MANAGER")


def credential_value(text: str) -> str | None:
    """What kind of credential a literal is, if it plainly is one."""
    if len(text) < SHORTEST_CREDENTIAL:
        return None
    m = CREDENTIAL_VALUE.search(text)
    return CREDENTIAL_LABELS[m.lastgroup] if m else None


def _variable_outcomes(path: str, item: dict, tpl: Any) -> Iterator[Outcome]:
    types = [("PLAINTEXT" if t is ABSENT else t) for t in alternatives(item.get("Type", ABSENT), tpl)]
    if all(isinstance(t, str) and t in SAFE_TYPES for t in types):
        return
    type_unknown = next((t for t in types if isinstance(t, Unknown)), None)
    names = [n for n in (as_text(v) for v in alternatives(item.get("Name"), tpl)) if n is not None]
    label = names[0] if names else "a variable"
    credential = any(names_credential(n) for n in names)
    value_path = f"{path}/Value"
    for value in alternatives(item.get("Value", ABSENT), tpl):
        if isinstance(value, Unknown):
            if credential:
                yield unverifiable(value_path, f"{label} looks like a credential and its plaintext value is "
                                               f"known only at deploy time ({value.reason}); use Type "
                                               f"SECRETS_MANAGER or PARAMETER_STORE")
            continue
        text = _text(value)
        if text is None:
            continue
        found = credential_value(text)
        if found:
            problem = f"{label} holds {found}"
        elif SECRET_REFERENCE.search(text):
            problem = (f"{label} copies a secret's plaintext into the project; use Type SECRETS_MANAGER "
                       f"with the secret's name")
        elif credential and not TOKEN_RE.search(text) and not is_inert_literal(text):
            problem = f"{label} looks like a credential and has a literal plaintext value"
        else:
            continue
        if type_unknown is not None:
            yield unverifiable(value_path, f"{problem}, unless its Type (known only at deploy time: "
                                           f"{type_unknown.reason}) is SECRETS_MANAGER or PARAMETER_STORE")
        else:
            yield violation(value_path, f"{problem}; plaintext variables are shown to anyone who can read "
                                        f"the project")


@rule("DP-CodeBuildNoPlaintextCredentials", clause=2, severity="error", types=[PROJECT],
      title="CodeBuild projects keep no credentials in plaintext environment variables",
      rationale="Clause 2: no shared credentials in plain sight, and clause 7: secrets are "
                "accessible only to the application's principal developers. A CodeBuild "
                "environment variable is PLAINTEXT unless its Type says otherwise, and plaintext "
                "values are shown by the console and by BatchGetProjects to anyone who may read "
                "the project, and end up in the template. A plaintext variable whose name looks "
                "like a credential (password, secret, token, api key, private or access key) must "
                "not have a value, no plaintext value may look like a credential (an AWS access "
                "key id, a private key block, a GitHub, GitLab or Slack token), and a "
                "{{resolve:secretsmanager:...}} reference is refused too because CloudFormation "
                "copies the plaintext into the project. Variables of Type SECRETS_MANAGER or "
                "PARAMETER_STORE hold only the secret's or parameter's name and pass.",
      remediation="codebuild.Project(self, 'Build', ..., environment_variables={\n"
                  "    'DB_PASSWORD': codebuild.BuildEnvironmentVariable(\n"
                  "        type=codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER, value=secret.secret_name)})")
def codebuild_no_plaintext_credentials(r, t):
    for path, item in r.values("Environment.EnvironmentVariables.*"):
        if item is ABSENT:
            continue
        if not isinstance(item, dict):
            yield unverifiable(path, f"the environment variables cannot be read: {_reason(item)}")
            continue
        yield from _variable_outcomes(path, item, r.template)


# ---------------------------------------------------------------- CodeBuild: source URLs

URL_USERINFO = LazyPattern(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://([^/?#@\s]*)@")
TOKEN_LIKE = LazyPattern(r"^[A-Za-z0-9_\-]{20,}$")
PLACEHOLDER = "\x00"  # stands for a value substituted at deploy time


def _url_texts(node: Any, tpl: Any) -> list:
    """The strings a URL property may take, with PLACEHOLDER where Fn::Sub or Fn::Join put in a
    value known only at deploy time (so that a token's position can still be seen); Unknown when
    the whole URL is not written in the template."""
    if isinstance(node, dict) and len(node) == 1:
        key, arg = next(iter(node.items()))
        if key == "Fn::Sub":
            text = arg[0] if isinstance(arg, list) and arg else arg
            if isinstance(text, str):
                resolved = [v for v in alternatives(node, tpl) if isinstance(v, str)]
                return resolved or [_SUB_VAR.sub(PLACEHOLDER, text)]
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) \
                and isinstance(arg[1], list):
            resolved = [v for v in alternatives(node, tpl) if isinstance(v, str)]
            return resolved or [arg[0].join(p if isinstance(p, str) else PLACEHOLDER for p in arg[1])]
    out = []
    for value in alternatives(node, tpl):
        if isinstance(value, (Unknown, ResRef)) or value is ABSENT:
            out.append(value)
        else:
            text = as_text(value)
            out.append(text if text is not None else Unknown("the location is not a string"))
    return out


def url_credential(text: str) -> str | None:
    """What the user part of a URL gives away: a password, a token, or a value filled in at
    deploy time (a token from a parameter). A bare user name (ssh://git@...) is no secret."""
    m = URL_USERINFO.match(text)
    if not m:
        return None
    userinfo = TOKEN_RE.sub(PLACEHOLDER, m.group(1))
    user, _, password = userinfo.partition(":")
    if password:
        return "a password or token"
    if PLACEHOLDER in user:
        return "a value filled in at deploy time, such as a token from a parameter"
    if TOKEN_LIKE.match(user) or credential_value(user):
        return "a token"
    return None


def _location_outcomes(r, path_spec: str) -> Iterator[Outcome]:
    for path, node in raw_values(r, path_spec):
        texts = [node] if isinstance(node, Unknown) else _url_texts(node, r.template)
        for text in texts:
            if isinstance(text, Unknown):
                yield unverifiable(path, f"the source location is known only at deploy time ({text.reason}); "
                                         f"dpguard cannot tell whether it carries a token")
            elif isinstance(text, str):
                found = url_credential(text)
                if found:
                    yield violation(path, f"the user part of the source URL holds {found}; connect the "
                                          f"repository with a source credential or CodeConnections instead")


def _auth_outcomes(r, path_spec: str) -> Iterator[Outcome]:
    for path, node in raw_values(r, path_spec):
        sources = [("unknown", node.reason)] if isinstance(node, Unknown) else secret_sources(node, r.template)
        sources = [(kind, detail) for kind, detail in sources
                   if not (kind == "literal" and (not detail.strip() or detail.startswith("arn:")))]
        yield from source_outcomes(path, "the source's OAuth token (Auth.Resource)", sources)


@rule("DP-CodeBuildSourceNoCredentials", clause=2, severity="error", types=[PROJECT, SOURCE_CREDENTIAL],
      title="CodeBuild sources carry no tokens in URLs or templates",
      rationale="Clause 2: no shared credentials in plain sight. A source Location such as "
                "https://user:token@github.com/org/repo.git or https://<token>@github.com/... "
                "stores the token in the project, where every reader of the project (and of the "
                "template) sees it; so does a literal Auth.Resource token, and a literal Token of an "
                "AWS::CodeBuild::SourceCredential. A token from a NoEcho parameter or a "
                "{{resolve:secretsmanager:...}} reference is accepted for a SourceCredential and "
                "Auth.Resource, never inside a URL. A location known only at deploy time (a "
                "parameter) is unverifiable: the policy fails closed.",
      remediation="codebuild.GitHubSourceCredentials(self, 'GitHubCreds', access_token=SecretValue."
                  "secrets_manager('github-token'))\n"
                  "codebuild.Project(self, 'Build', source=codebuild.Source.git_hub(owner='org', repo='repo'), ...)")
def codebuild_source_no_credentials(r, t):
    if r.type == SOURCE_CREDENTIAL:
        for path, node in raw_values(r, "Token"):
            sources = [("unknown", node.reason)] if isinstance(node, Unknown) else secret_sources(node, r.template)
            # CODECONNECTIONS and SECRETS_MANAGER credentials name an ARN, which is no secret
            sources = [(k, d) for k, d in sources if not (k == "literal" and d.strip().startswith("arn:"))]
            yield from source_outcomes(path, "the source credential's token", sources)
        return
    yield from _location_outcomes(r, "Source.Location")
    yield from _location_outcomes(r, "SecondarySources.*.Location")
    yield from _auth_outcomes(r, "Source.Auth.Resource")
    yield from _auth_outcomes(r, "SecondarySources.*.Auth.Resource")


# ---------------------------------------------------------------- CodeBuild: encryption, logs

def _artifact_sets(r) -> list[tuple[str, Any]]:
    """(path, artifacts mapping or Unknown) for Artifacts and each SecondaryArtifacts entry."""
    out = [(p, v) for p, v in r.values("Artifacts") if v is not ABSENT]
    out += [(p, v) for p, v in r.values("SecondaryArtifacts.*") if v is not ABSENT]
    return out


def _s3_types(item: Any, tpl: Any) -> list:
    """The Type values of an artifacts mapping: "S3", other strings, or Unknown."""
    return nested_values(item, tpl, "Type")


@rule("DP-CodeBuildArtifactsEncrypted", clause=7, severity="error", types=[PROJECT],
      title="CodeBuild projects do not turn off encryption of artifacts and S3 logs",
      rationale="Clause 7: all data at rest encrypted. CodeBuild encrypts S3 artifacts and S3 "
                "build logs unless EncryptionDisabled is true (the default is false, which "
                "passes). Build output often holds packaged configuration and data; turning "
                "encryption off writes it to S3 in the clear. EncryptionDisabled means something "
                "only for S3 artifacts (CODEPIPELINE artifacts are encrypted by the pipeline's "
                "artifact store), so it is judged there.",
      remediation="codebuild.Project(self, 'Build', ..., artifacts=codebuild.Artifacts.s3(bucket=bucket, "
                  "encryption=True), encryption_key=key)")
def codebuild_artifacts_encrypted(r, t):
    tpl = r.template
    for path, item in _artifact_sets(r):
        if not isinstance(item, dict):
            yield unverifiable(path, f"the artifacts cannot be read: {_reason(item)}")
            continue
        kinds = _s3_types(item, tpl)
        if not any(k == "S3" or isinstance(k, Unknown) for k in kinds):
            continue
        for value in nested_values(item, tpl, "EncryptionDisabled"):
            if isinstance(value, Unknown):
                yield unverifiable(f"{path}/EncryptionDisabled",
                                   f"cannot verify that the artifacts are encrypted: {value.reason}")
            elif value is not ABSENT and as_bool(value) is not False:
                yield violation(f"{path}/EncryptionDisabled", "encryption of the S3 artifacts is turned off")
    for path, value in r.values("LogsConfig.S3Logs.EncryptionDisabled"):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that the S3 build logs are encrypted: {value.reason}")
        elif value is not ABSENT and as_bool(value) is not False:
            yield violation(path, "encryption of the S3 build logs is turned off")


def _writes_to_s3(r) -> bool | Unknown:
    """Does the project write S3 artifacts (which its EncryptionKey encrypts)?"""
    unknown = None
    for _, item in _artifact_sets(r):
        kinds = _s3_types(item, r.template) if isinstance(item, dict) else [item]
        for kind in kinds:
            if kind == "S3":
                return True
            if isinstance(kind, Unknown):
                unknown = kind
    return unknown if unknown is not None else False


@rule("DP-CodeBuildCmk", clause=7, severity="warning", types=[PROJECT],
      title="CodeBuild projects encrypt S3 artifacts with a customer-managed key",
      rationale="Clause 7: cryptographic material is accessible only to our processes. Without "
                "EncryptionKey CodeBuild encrypts S3 artifacts with the AWS managed key aws/s3, "
                "whose key policy we cannot restrict. As for data stores (DP-ConfidentialDataCmk), "
                "a project tagged data-classification public or internal may use it, and an "
                "untagged one is treated as confidential. A warning, like DP-EcrKmsEncryption: build "
                "output rarely holds customer data. CODEPIPELINE artifacts are encrypted with the "
                "pipeline's artifact store key and are not judged here.",
      remediation="codebuild.Project(self, 'Build', ..., encryption_key=key)  "
                  "# key = kms.Key(self, 'BuildKey', enable_key_rotation=True)")
def codebuild_cmk(r, t):
    writes = _writes_to_s3(r)
    if writes is False:
        return
    problems = []
    for path, key in leaves(r, "EncryptionKey"):
        managed = customer_managed_key(r, key)
        if managed is not True:
            problems.append((path, managed))
    if not problems:
        return
    classes = tag_values(r, "data-classification")
    if all(v in NO_CMK_NEEDED for v in classes):
        return
    unknown_class = next((v for v in classes if isinstance(v, Unknown)), None)
    needs = any(not isinstance(v, Unknown) and v not in NO_CMK_NEEDED for v in classes)
    for path, managed in problems:
        if isinstance(managed, Unknown):
            yield unverifiable(path, f"cannot tell whether the key is customer managed: {managed.reason}")
        elif isinstance(writes, Unknown):
            yield unverifiable(path, f"no customer-managed key, and the artifact type cannot be known: "
                                     f"{writes.reason}")
        elif not needs and unknown_class is not None:
            yield unverifiable(path, f"no customer-managed key, and the data classification cannot be "
                                     f"known: {unknown_class.reason}")
        else:
            yield violation(path, "the S3 artifacts are encrypted with the AWS managed key aws/s3; set "
                                  "EncryptionKey to a customer-managed KMS key (or tag the project "
                                  "data-classification public or internal)")


@rule("DP-CodeBuildLogging", clause=9, severity="error", types=[PROJECT],
      title="CodeBuild projects keep build logs",
      rationale="Clause 9: logs of all system activity. CodeBuild sends build logs to CloudWatch "
                "Logs unless LogsConfig.CloudWatchLogs.Status is DISABLED, and to S3 only when "
                "LogsConfig.S3Logs.Status is ENABLED (its default is DISABLED). A project that "
                "disables CloudWatch Logs and does not enable S3 logs keeps no record of what its "
                "builds did.",
      remediation="codebuild.Project(self, 'Build', ..., logging=codebuild.LoggingOptions(\n"
                  "    cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)))")
def codebuild_logging(r, t):
    for cw_path, cw in leaves(r, "LogsConfig.CloudWatchLogs.Status"):
        if cw is ABSENT or cw == "ENABLED":
            continue
        for s3_path, s3 in leaves(r, "LogsConfig.S3Logs.Status"):
            if s3 == "ENABLED":
                continue
            unknown = next((v for v in (cw, s3) if isinstance(v, Unknown)), None)
            if unknown is not None:
                yield unverifiable(cw_path, f"cannot verify that build logs are kept: {unknown.reason}")
            elif cw == "DISABLED":
                yield violation(cw_path, "CloudWatch Logs are disabled and S3 logs are not enabled, so "
                                         "builds leave no logs")
            else:
                yield violation(cw_path, f"CloudWatchLogs Status {cw!r} is not ENABLED or DISABLED")
            return


# ---------------------------------------------------------------- EKS

@rule("DP-EksSecretsEncrypted", clause=7, severity="error", types=[EKS],
      title="EKS clusters encrypt Kubernetes secrets with a KMS key of ours",
      rationale="Clause 7: secrets get an added layer of encryption and cryptographic material "
                "is accessible only to our processes. Without an EncryptionConfig entry whose "
                "Resources list \"secrets\" and whose Provider names a KMS key, Kubernetes secrets "
                "in etcd are protected only by the EBS encryption of the control plane and, on "
                "Kubernetes 1.28 and later, by an AWS-owned key that we cannot audit or revoke.",
      remediation="eks.Cluster(self, 'Cluster', ..., secrets_encryption_key=key)  "
                  "# or CfnCluster(encryption_config=[{'resources': ['secrets'], 'provider': {'keyArn': key.key_arn}}])")
def eks_secrets_encrypted(r, t):
    tpl = r.template
    for path, configs in leaves(r, "EncryptionConfig"):
        if configs is ABSENT:
            yield violation(path, "Kubernetes secrets are not envelope-encrypted with a KMS key of ours "
                                  "(no EncryptionConfig)")
            continue
        if not isinstance(configs, list):
            yield unverifiable(path, f"EncryptionConfig cannot be read: {_reason(configs)}")
            continue
        for variant in expand_ifs(configs, tpl):
            outcome = _secrets_outcome(path, variant, tpl)
            if outcome is not None:
                yield outcome
                break  # one finding, whichever Fn::If branch fails first


def _secrets_outcome(path: str, configs: Any, tpl: Any) -> Outcome | None:
    """The finding for one variant of EncryptionConfig (Fn::If branches chosen), if any."""
    if not isinstance(configs, list):
        return unverifiable(path, f"EncryptionConfig cannot be read: {_reason(configs)}")
    unknown = None
    for item in configs:
        resources_ok, key_ok = False, False
        for resources in nested_values(item, tpl, "Resources"):
            if isinstance(resources, Unknown):
                unknown = unknown or resources
            elif isinstance(resources, list):
                names = [v for res in resources for v in alternatives(res, tpl)]
                resources_ok = resources_ok or "secrets" in names
                unknown = unknown or next((v for v in names if isinstance(v, Unknown)), None)
        for key in nested_values(item, tpl, "Provider", "KeyArn"):
            if isinstance(key, Unknown):
                unknown = unknown or key
            elif key not in (ABSENT, None, ""):
                key_ok = True
        if resources_ok and key_ok:
            return None
    if unknown is not None:
        return unverifiable(path, f"cannot verify that secrets are encrypted: {unknown.reason}")
    if not configs:
        return violation(path, "Kubernetes secrets are not envelope-encrypted with a KMS key of ours "
                               "(no EncryptionConfig entry)")
    return violation(path, "no EncryptionConfig entry encrypts \"secrets\" with a Provider KeyArn")


@rule("DP-EksEndpointNotPublic", clause=1, severity="error", types=[EKS],
      title="EKS API endpoints are not open to the internet",
      rationale="Clause 1: access from unauthorized addresses is denied at the network. "
                "ResourcesVpcConfig.EndpointPublicAccess defaults to true and PublicAccessCidrs to "
                "0.0.0.0/0, so a cluster that says neither exposes its Kubernetes API to every "
                "address. Compliant: EndpointPublicAccess false (private endpoint only), or a public "
                "endpoint limited by PublicAccessCidrs to known ranges (no 0.0.0.0/0, ::/0 or range "
                "wider than a /8): that denies unauthorized addresses at the network, as an "
                "allow-listed security group does, and IAM authentication still applies.",
      remediation="eks.Cluster(self, 'Cluster', ..., endpoint_access=eks.EndpointAccess.PRIVATE)  "
                  "# or eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from('203.0.113.0/24')")
def eks_endpoint_not_public(r, t):
    tpl = r.template
    for path, public in leaves(r, "ResourcesVpcConfig.EndpointPublicAccess"):
        if isinstance(public, Unknown):
            yield unverifiable(path, f"cannot tell whether the API endpoint is public: {public.reason}")
            continue
        if public is not ABSENT and as_bool(public) is False:
            continue
        for cidr_path, cidrs in leaves(r, "ResourcesVpcConfig.PublicAccessCidrs"):
            if cidrs is ABSENT:
                yield violation(path, "the API endpoint is public (EndpointPublicAccess defaults to true) "
                                      "and open to 0.0.0.0/0; set EndpointPublicAccess false or "
                                      "PublicAccessCidrs to known ranges")
            elif not isinstance(cidrs, list):
                yield unverifiable(cidr_path, f"PublicAccessCidrs cannot be read: {_reason(cidrs)}")
            elif not cidrs:
                yield violation(cidr_path, "the API endpoint is public and PublicAccessCidrs is empty, "
                                           "which EKS takes as 0.0.0.0/0")
            else:
                yield from _cidr_outcomes(cidr_path, cidrs, tpl)


def _cidr_outcomes(path: str, cidrs: list, tpl: Any) -> Iterator[Outcome]:
    for index, node in enumerate(cidrs):
        for value in alternatives(node, tpl):
            world = world_cidr(value, tpl)
            if isinstance(world, Unknown):
                yield unverifiable(f"{path}/{index}", f"cannot verify who may reach the public API "
                                                      f"endpoint: {world.reason}")
                return
            if world:
                yield violation(f"{path}/{index}", f"the public API endpoint admits {value} (the whole "
                                                   f"internet or most of it)")
                return


EKS_REQUIRED_LOGS = ("api", "audit", "authenticator")


@rule("DP-EksControlPlaneLogging", clause=9, severity="error", types=[EKS],
      title="EKS clusters log API, audit and authenticator events",
      rationale="Clause 9: logs of all system activity, including who did what. EKS sends no "
                "control-plane logs unless Logging.ClusterLogging.EnabledTypes lists them; api, "
                "audit and authenticator record every request to the Kubernetes API, who made it "
                "and how they authenticated. controllerManager and scheduler are optional.",
      remediation="eks.Cluster(self, 'Cluster', ..., cluster_logging=[eks.ClusterLoggingTypes.API, "
                  "eks.ClusterLoggingTypes.AUDIT, eks.ClusterLoggingTypes.AUTHENTICATOR])")
def eks_control_plane_logging(r, t):
    tpl = r.template
    for path, types in leaves(r, "Logging.ClusterLogging.EnabledTypes"):
        if isinstance(types, Unknown) or (types is not ABSENT and not isinstance(types, list)):
            yield unverifiable(path, f"the enabled log types cannot be read: {_reason(types)}")
            continue
        for variant in expand_ifs(types or [], tpl):
            outcome = _logging_outcome(path, variant, tpl)
            if outcome is not None:
                yield outcome
                break  # one finding, whichever Fn::If branch fails first


def _logging_outcome(path: str, types: Any, tpl: Any) -> Outcome | None:
    if not isinstance(types, list):
        return unverifiable(path, f"the enabled log types cannot be read: {_reason(types)}")
    found, unknown = set(), None
    for item in types:
        for value in nested_values(item, tpl, "Type"):
            if isinstance(value, Unknown):
                unknown = unknown or value
            elif isinstance(value, str):
                found.add(value)
    missing = [name for name in EKS_REQUIRED_LOGS if name not in found]
    if not missing:
        return None
    if unknown is not None:
        return unverifiable(path, f"cannot verify that {', '.join(missing)} logs are on: {unknown.reason}")
    return violation(path, f"control-plane logs {', '.join(missing)} are not enabled")


# ---------------------------------------------------------------- WorkSpaces

@rule("DP-WorkSpacesVolumesEncrypted", clause=7, severity="error", types=[WORKSPACE],
      title="WorkSpaces encrypt root and user volumes with a KMS key",
      rationale="Clause 7: all data at rest encrypted. A WorkSpace's root volume (C: or /) and "
                "user volume (D: or /home) hold the user's files and cached data; both are "
                "unencrypted unless RootVolumeEncryptionEnabled and UserVolumeEncryptionEnabled "
                "are true (both default to false), and encryption needs a VolumeEncryptionKey.",
      remediation="workspaces.CfnWorkspace(self, 'Desk', ..., root_volume_encryption_enabled=True,\n"
                  "    user_volume_encryption_enabled=True, volume_encryption_key=key.key_arn)")
def workspaces_volumes_encrypted(r, t):
    enabled = False
    for prop, label in (("RootVolumeEncryptionEnabled", "root"), ("UserVolumeEncryptionEnabled", "user")):
        for path, value in leaves(r, prop):
            if isinstance(value, Unknown):
                enabled = True
                yield unverifiable(path, f"cannot verify that the {label} volume is encrypted: {value.reason}")
            elif as_bool(value) is True:
                enabled = True
            else:
                default = " (the default)" if value is ABSENT else ""
                yield violation(path, f"the {label} volume is not encrypted{default}; set {prop} true "
                                      f"with a VolumeEncryptionKey")
    if enabled:
        yield from require(r, "VolumeEncryptionKey", lambda v: v not in (ABSENT, None, ""),
                           "volume encryption is on but no VolumeEncryptionKey is set")


# ---------------------------------------------------------------- DLM

def _copy_outcomes(path: str, values: list, what: str) -> Iterator[Outcome]:
    for value in values:
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that the {what} is encrypted: {value.reason}")
            return
        if as_bool(value) is not True:
            state = "Encrypted is not set" if value is ABSENT else "Encrypted is false"
            yield violation(path, f"the {what} is not encrypted ({state}): copies of unencrypted snapshots "
                                  f"stay unencrypted; set Encrypted true with a CmkArn")
            return


@rule("DP-DlmCopiesEncrypted", clause=7, severity="error", types=[DLM],
      title="DLM lifecycle policies encrypt cross-region and cross-account copies",
      rationale="Clause 7: all data at rest encrypted, wherever it is copied. A DLM policy's "
                "cross-region copy rules (PolicyDetails.Schedules[*].CrossRegionCopyRules) and "
                "event-based copy actions (PolicyDetails.Actions[*].CrossRegionCopy) encrypt a copy "
                "of an unencrypted snapshot only when Encrypted is true; only copies of encrypted "
                "snapshots are encrypted regardless, and the template does not show which snapshots "
                "a policy will meet, so Encrypted must be true.",
      remediation="dlm.CfnLifecyclePolicy(self, 'Snapshots', policy_details=dlm.CfnLifecyclePolicy."
                  "PolicyDetailsProperty(schedules=[dlm.CfnLifecyclePolicy.ScheduleProperty(\n"
                  "    cross_region_copy_rules=[dlm.CfnLifecyclePolicy.CrossRegionCopyRuleProperty(\n"
                  "        target='eu-west-1', encrypted=True, cmk_arn=key_arn)], ...)], ...), ...)")
def dlm_copies_encrypted(r, t):
    tpl = r.template
    for path, item in r.values("PolicyDetails.Schedules.*.CrossRegionCopyRules.*"):
        if item is ABSENT:
            continue
        yield from _copy_outcomes(f"{path}/Encrypted", nested_values(item, tpl, "Encrypted"),
                                  "cross-region copy")
    for path, item in r.values("PolicyDetails.Actions.*.CrossRegionCopy.*"):
        if item is ABSENT:
            continue
        yield from _copy_outcomes(f"{path}/EncryptionConfiguration/Encrypted",
                                  nested_values(item, tpl, "EncryptionConfiguration", "Encrypted"),
                                  "copy made by the event-based policy")

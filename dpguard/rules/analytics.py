"""Analytics and machine learning services that process data in bulk: EMR clusters and their
security configurations, SageMaker notebooks, domains and endpoints, Glue jobs, crawlers,
connections and the Data Catalog. Encrypted at rest (clause 7) and in transit (clause 3), no
credentials in templates (clause 2), no direct internet access (clause 1), no root (clause 8)."""
from __future__ import annotations

import json
import weakref
from typing import Any, Iterator

from ..engine.lazy_re import LazyPattern
from ..engine.checks import customer_managed_key, follow, leaves, literal_name, nested_values
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, ResRef, Unknown, as_bool, is_literal
from . import rule
from .secrets import raw_values, secret_sources, source_outcomes

EMR_CLUSTER = "AWS::EMR::Cluster"
EMR_SECURITY = "AWS::EMR::SecurityConfiguration"
NOTEBOOK = "AWS::SageMaker::NotebookInstance"
ENDPOINT_CONFIG = "AWS::SageMaker::EndpointConfig"
DOMAIN = "AWS::SageMaker::Domain"
GLUE_SECURITY = "AWS::Glue::SecurityConfiguration"
GLUE_JOB = "AWS::Glue::Job"
GLUE_CRAWLER = "AWS::Glue::Crawler"
GLUE_DEV_ENDPOINT = "AWS::Glue::DevEndpoint"
GLUE_CATALOG_SETTINGS = "AWS::Glue::DataCatalogEncryptionSettings"
GLUE_CONNECTION = "AWS::Glue::Connection"


def _reason(value: Any) -> str:
    return value.reason if isinstance(value, Unknown) else "it has the wrong shape"


_NAME_INDEX: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _by_name(app: Any, rtype: str, name_prop: str) -> dict:
    """{literal name: resource} for the resources of `rtype` in the app, built once per app (a
    look-up per cluster or job would be quadratic in large apps)."""
    per_app = _NAME_INDEX.setdefault(app, {})
    key = (rtype, name_prop, len(app.templates))
    if key not in per_app:
        index: dict = {}
        for candidate in app.of_type(rtype):
            name = literal_name(candidate, name_prop)
            if name:
                index.setdefault(name, candidate)
        per_app[key] = index
    return per_app[key]


def _named_resource(r, value: Any, rtype: str, name_prop: str) -> Any:
    """The resource of `rtype` that a property value names: by Ref/GetAtt, or by its literal
    `name_prop` in any template of the app. Unknown when the value cannot be followed."""
    if isinstance(value, Unknown):
        return value
    target = follow(r, value, rtype)
    if target is not None:
        return target
    text = value if isinstance(value, str) else None
    if text and is_literal(text):
        found = _by_name(r.template.app, rtype, name_prop).get(text)
        if found is not None:
            return found
        return Unknown(f"{text!r} is not defined in the scanned templates")
    if isinstance(value, ResRef):
        return Unknown(f"{value.logical_id} is not a {rtype}")
    return Unknown("the reference cannot be followed")


def _attached(r, prop: str, rtype: str, name_prop: str, what: str, fix: str) -> Iterator[Outcome]:
    """The resource must name a `rtype` (the security configuration) that the scanned templates
    define; that resource is judged by its own rules."""
    for path, value in leaves(r, prop):
        if value is ABSENT or value == "":
            yield violation(path, f"no {what} is attached; {fix}")
            continue
        target = _named_resource(r, value, rtype, name_prop)
        if isinstance(target, Unknown):
            yield unverifiable(path, f"the {what} cannot be judged: {target.reason}")


# ---------------------------------------------------------------- EMR

@rule("DP-EmrSecurityConfiguration", clause=7, severity="error", types=[EMR_CLUSTER],
      title="EMR clusters use a security configuration of the app",
      rationale="Clause 7: all data at rest encrypted, and clause 3: all data in transit over TLS. "
                "An EMR cluster encrypts its S3 data, local disks and traffic between nodes only "
                "through a security configuration; without SecurityConfiguration none of it is "
                "encrypted by EMR (EBS volumes and EMRFS data stay in the clear unless the account "
                "or bucket defaults say otherwise). The configuration it names (by Ref or by Name) "
                "must be an AWS::EMR::SecurityConfiguration of the scanned templates, which "
                "DP-EmrAtRestEncryption and DP-EmrInTransitEncryption judge; a name defined "
                "elsewhere is unverifiable.",
      remediation="emr.CfnCluster(self, 'Cluster', ..., security_configuration=security_config.ref)  "
                  "# security_config = emr.CfnSecurityConfiguration(self, 'Encryption', ...)")
def emr_security_configuration(r, t):
    yield from _attached(r, "SecurityConfiguration", EMR_SECURITY, "Name", "EMR security configuration",
                         "set SecurityConfiguration to an AWS::EMR::SecurityConfiguration that encrypts "
                         "at rest and in transit")


def _emr_documents(r) -> Iterator[tuple[str, Any]]:
    """(path, configuration mapping or Unknown) for each value of SecurityConfiguration, which
    is a JSON object or a JSON string."""
    for path, doc in leaves(r, "SecurityConfiguration"):
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except ValueError:
                doc = Unknown("the security configuration is a string that is not JSON")
        if doc is ABSENT:
            doc = {}
        if not isinstance(doc, (dict, Unknown)):
            doc = Unknown("the security configuration is not a mapping")
        yield path, doc


def _emr_flag(path: str, doc: Any, tpl: Any, flag: str, what: str) -> Outcome | None:
    for value in nested_values(doc, tpl, "EncryptionConfiguration", flag):
        if isinstance(value, Unknown):
            return unverifiable(f"{path}/EncryptionConfiguration/{flag}",
                                f"cannot verify that {what} is on: {value.reason}")
        if as_bool(value) is not True:
            state = "not set" if value is ABSENT else "not true"
            return violation(f"{path}/EncryptionConfiguration/{flag}",
                             f"{what} is off ({flag} is {state})")
    return None


@rule("DP-EmrAtRestEncryption", clause=7, severity="error", types=[EMR_SECURITY],
      title="EMR security configurations encrypt S3 data and local disks",
      rationale="Clause 7: all data at rest encrypted. EMR encrypts nothing at rest unless the "
                "security configuration sets EncryptionConfiguration.EnableAtRestEncryption true "
                "and, under AtRestEncryptionConfiguration, both an S3EncryptionConfiguration "
                "(EMRFS data in S3) and a LocalDiskEncryptionConfiguration (HDFS, spill and EBS "
                "volumes); a configuration with only one of them leaves the other in the clear.",
      remediation="emr.CfnSecurityConfiguration(self, 'Encryption', security_configuration={'EncryptionConfiguration': {\n"
                  "    'EnableAtRestEncryption': True, 'AtRestEncryptionConfiguration': {\n"
                  "        'S3EncryptionConfiguration': {'EncryptionMode': 'SSE-KMS', 'AwsKmsKey': key.key_arn},\n"
                  "        'LocalDiskEncryptionConfiguration': {'EncryptionKeyProviderType': 'AwsKms', "
                  "'AwsKmsKey': key.key_arn, 'EnableEbsEncryption': True}},\n"
                  "    'EnableInTransitEncryption': True, ...}})")
def emr_at_rest_encryption(r, t):
    tpl = r.template
    for path, doc in _emr_documents(r):
        if isinstance(doc, Unknown):
            yield unverifiable(path, f"the security configuration cannot be read: {doc.reason}")
            continue
        outcome = _emr_flag(path, doc, tpl, "EnableAtRestEncryption", "encryption at rest")
        if outcome is not None:
            yield outcome
            continue
        base = f"{path}/EncryptionConfiguration/AtRestEncryptionConfiguration"
        for part, key, what in (("S3EncryptionConfiguration", "EncryptionMode", "S3 (EMRFS) data"),
                                ("LocalDiskEncryptionConfiguration", "EncryptionKeyProviderType",
                                 "local disks")):
            for value in nested_values(doc, tpl, "EncryptionConfiguration", "AtRestEncryptionConfiguration",
                                       part, key):
                if isinstance(value, Unknown):
                    yield unverifiable(f"{base}/{part}", f"cannot verify that {what} are encrypted: {value.reason}")
                    break
                if value in (ABSENT, None, ""):
                    yield violation(f"{base}/{part}", f"{what} are not encrypted: no {part} with {key}")
                    break


@rule("DP-EmrInTransitEncryption", clause=3, severity="error", types=[EMR_SECURITY],
      title="EMR security configurations encrypt data in transit",
      rationale="Clause 3: all data in transit over TLS, unsecured channels disabled. EMR leaves "
                "traffic between nodes and to S3 through EMRFS unencrypted unless the security "
                "configuration sets EncryptionConfiguration.EnableInTransitEncryption true (with a "
                "TLS certificate configuration).",
      remediation="emr.CfnSecurityConfiguration(self, 'Encryption', security_configuration={'EncryptionConfiguration': {\n"
                  "    'EnableInTransitEncryption': True, 'InTransitEncryptionConfiguration': {\n"
                  "        'TLSCertificateConfiguration': {'CertificateProviderType': 'PEM', 'S3Object': certs_zip}}, ...}})")
def emr_in_transit_encryption(r, t):
    for path, doc in _emr_documents(r):
        if isinstance(doc, Unknown):
            yield unverifiable(path, f"the security configuration cannot be read: {doc.reason}")
            continue
        outcome = _emr_flag(path, doc, r.template, "EnableInTransitEncryption", "encryption in transit")
        if outcome is not None:
            yield outcome


# ---------------------------------------------------------------- SageMaker

def _cmk_outcomes(r, prop: str, what: str, default: str) -> Iterator[Outcome]:
    for path, key in leaves(r, prop):
        managed = customer_managed_key(r, key)
        if isinstance(managed, Unknown):
            yield unverifiable(path, f"cannot tell whether {what} uses a customer-managed key: {managed.reason}")
        elif managed is not True:
            absent = f" ({default} when {prop} is not set)" if key is ABSENT else ""
            yield violation(path, f"{what} is not encrypted with a customer-managed KMS key{absent}")


@rule("DP-SageMakerKms", clause=7, severity="error", types=[NOTEBOOK, DOMAIN],
      title="SageMaker notebooks and Studio domains encrypt storage with a customer-managed key",
      rationale="Clause 7: all data at rest encrypted, with material only our processes can use. "
                "Notebook instances and Studio domains keep working copies of training data, "
                "notebooks and credentials on their storage volumes (EBS for notebooks, EFS for "
                "domains). Without KmsKeyId SageMaker encrypts them with an AWS managed or "
                "AWS-owned key, whose policy we cannot restrict or audit; KmsKeyId must name a key "
                "of ours.",
      remediation="sagemaker.CfnNotebookInstance(self, 'Notebook', ..., kms_key_id=key.key_id)\n"
                  "sagemaker.CfnDomain(self, 'Studio', ..., kms_key_id=key.key_id)")
def sagemaker_kms(r, t):
    what = "the notebook's storage volume" if r.type == NOTEBOOK else "the domain's EFS volume"
    yield from _cmk_outcomes(r, "KmsKeyId", what, "an AWS managed key is used")


@rule("DP-SageMakerNotebookNoInternet", clause=1, severity="error", types=[NOTEBOOK],
      title="SageMaker notebook instances have no direct internet access",
      rationale="Clause 1: access from and to unauthorized addresses is denied at the network. "
                "DirectInternetAccess defaults to Enabled: SageMaker then gives the notebook a "
                "network interface with a route to the internet outside our VPC, where no "
                "security group or flow log of ours applies and data can leave freely. Disabled "
                "routes all traffic through the VPC subnet the notebook is placed in.",
      remediation="sagemaker.CfnNotebookInstance(self, 'Notebook', ..., direct_internet_access='Disabled',\n"
                  "    subnet_id=subnet.subnet_id, security_group_ids=[sg.security_group_id])")
def sagemaker_notebook_no_internet(r, t):
    yield from _must_be(r, "DirectInternetAccess", "Disabled", "direct internet access is off",
                        "DirectInternetAccess is not set and defaults to Enabled; set it to Disabled with a SubnetId",
                        "the notebook reaches the internet outside the VPC")


@rule("DP-SageMakerNotebookNoRoot", clause=8, severity="error", types=[NOTEBOOK],
      title="SageMaker notebook users do not get root",
      rationale="Clause 8: least privilege. RootAccess defaults to Enabled, which lets every "
                "notebook user become root on the instance, change its configuration, install "
                "anything and read every user's files and credentials. Lifecycle configurations "
                "still run as root when RootAccess is Disabled.",
      remediation="sagemaker.CfnNotebookInstance(self, 'Notebook', ..., root_access='Disabled')")
def sagemaker_notebook_no_root(r, t):
    yield from _must_be(r, "RootAccess", "Disabled", "root access is off",
                        "RootAccess is not set and defaults to Enabled; set it to Disabled",
                        "notebook users can become root")


def _must_be(r, prop: str, wanted: str, what: str, when_absent: str, when_other: str) -> Iterator[Outcome]:
    """`prop` must be `wanted`; AWS's default is not, so absence fails with its own message."""
    for path, value in leaves(r, prop):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that {what}: {value.reason}")
        elif value is ABSENT:
            yield violation(path, when_absent)
        elif value != wanted:
            yield violation(path, f"{prop} is {value!r}: {when_other}")


# Instance families whose storage is local NVMe (instance store), encrypted by the instance's
# hardware; SageMaker refuses a KmsKeyId for them. Families with a "d" after the generation
# (m5d, c6id, r5dn, g4dn, p3dn, p4d) and these, which have instance storage without the letter.
LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "p6", "trn1", "trn1n",
                                    "trn2", "inf2"})
D_FAMILY = LazyPattern(r"^[a-z]+\d+[a-z]*d[a-z]*$")


def local_storage(instance_type: str) -> bool:
    """Does a SageMaker instance type (ml.m5d.large) come with instance-store volumes only?"""
    parts = instance_type.strip().lower().split(".")
    family = parts[1] if len(parts) >= 3 and parts[0] == "ml" else ""
    return family in LOCAL_STORAGE_FAMILIES or bool(D_FAMILY.match(family))


def _needs_key(r) -> bool | Unknown:
    """Does any production variant of the endpoint configuration use EBS storage, which KmsKeyId
    encrypts? Serverless variants and instance types with local storage do not."""
    unknown = None
    tpl = r.template
    variants = [v for _, v in r.values("ProductionVariants.*") if v is not ABSENT]
    variants += [v for _, v in r.values("ShadowProductionVariants.*") if v is not ABSENT]
    for variant in variants:
        if not isinstance(variant, dict):
            unknown = unknown or Unknown(f"a production variant cannot be read: {_reason(variant)}")
            continue
        if any(v is not ABSENT for v in nested_values(variant, tpl, "ServerlessConfig")):
            continue
        for instance_type in nested_values(variant, tpl, "InstanceType"):
            if isinstance(instance_type, Unknown):
                unknown = unknown or instance_type
            elif isinstance(instance_type, str) and not local_storage(instance_type):
                return True
            elif not isinstance(instance_type, str) and instance_type is not ABSENT:
                unknown = unknown or Unknown("an instance type is not a string")
    return unknown if unknown is not None else False


@rule("DP-SageMakerEndpointKms", clause=7, severity="error", types=[ENDPOINT_CONFIG],
      title="SageMaker endpoints encrypt their storage volumes with a customer-managed key",
      rationale="Clause 7: all data at rest encrypted, with material only our processes can use. "
                "Endpoint instances keep the model and request data on an EBS storage volume, "
                "which SageMaker encrypts with an AWS managed key unless KmsKeyId names one of "
                "ours. Instance types with local instance-store volumes (ml.m5d, ml.g4dn, ml.g5, "
                "ml.p4d, ...) are encrypted by the instance's hardware and cannot take a KmsKeyId, "
                "and serverless variants use storage SageMaker manages: those pass without a key.",
      remediation="sagemaker.CfnEndpointConfig(self, 'Serving', production_variants=[...], kms_key_id=key.key_arn)")
def sagemaker_endpoint_kms(r, t):
    keys = leaves(r, "KmsKeyId")
    if all(customer_managed_key(r, key) is True for _, key in keys):
        return
    needs = _needs_key(r)
    if needs is False:
        return
    if isinstance(needs, Unknown):
        for path, key in keys:
            if customer_managed_key(r, key) is not True:
                yield unverifiable(path, f"no customer-managed key, and whether the instances use EBS storage "
                                         f"cannot be known: {needs.reason}")
        return
    yield from _cmk_outcomes(r, "KmsKeyId", "the endpoint's storage volume", "an AWS managed key is used")


@rule("DP-SageMakerDomainVpcOnly", clause=1, severity="error", types=[DOMAIN],
      title="SageMaker Studio domains send traffic through our VPC only",
      rationale="Clause 1: access from and to unauthorized addresses is denied at the network. "
                "AppNetworkAccessType defaults to PublicInternetOnly: Studio apps then reach the "
                "internet through a network SageMaker manages, outside our security groups and "
                "flow logs. VpcOnly sends all traffic through the domain's subnets.",
      remediation="sagemaker.CfnDomain(self, 'Studio', ..., app_network_access_type='VpcOnly', "
                  "vpc_id=vpc.vpc_id, subnet_ids=[...])")
def sagemaker_domain_vpc_only(r, t):
    yield from _must_be(r, "AppNetworkAccessType", "VpcOnly", "the domain is VPC only",
                        "AppNetworkAccessType is not set and defaults to PublicInternetOnly; set it to VpcOnly",
                        "Studio apps reach the internet outside the VPC")


# ---------------------------------------------------------------- Glue

GLUE_ENCRYPTIONS = (
    ("S3Encryptions.*.S3EncryptionMode", "data written to S3"),
    ("CloudWatchEncryption.CloudWatchEncryptionMode", "logs sent to CloudWatch"),
    ("JobBookmarksEncryption.JobBookmarksEncryptionMode", "job bookmarks"),
)


@rule("DP-GlueSecurityConfigurationEncrypted", clause=7, severity="error", types=[GLUE_SECURITY],
      title="Glue security configurations encrypt S3 output, logs and job bookmarks",
      rationale="Clause 7: all data at rest encrypted. A Glue security configuration decides how "
                "jobs, crawlers and development endpoints encrypt what they write to S3, the logs "
                "they send to CloudWatch and their job bookmarks; each mode is DISABLED unless "
                "set, so all three must be set to a mode other than DISABLED.",
      remediation="glue.CfnSecurityConfiguration(self, 'GlueEncryption', name='etl', encryption_configuration={\n"
                  "    'S3Encryptions': [{'S3EncryptionMode': 'SSE-KMS', 'KmsKeyArn': key.key_arn}],\n"
                  "    'CloudWatchEncryption': {'CloudWatchEncryptionMode': 'SSE-KMS', 'KmsKeyArn': key.key_arn},\n"
                  "    'JobBookmarksEncryption': {'JobBookmarksEncryptionMode': 'CSE-KMS', 'KmsKeyArn': key.key_arn}})")
def glue_security_configuration_encrypted(r, t):
    for prop, what in GLUE_ENCRYPTIONS:
        for path, mode in leaves(r, f"EncryptionConfiguration.{prop}"):
            path = path.split("/*", 1)[0]  # an empty S3Encryptions list: point at the list
            if isinstance(mode, Unknown):
                yield unverifiable(path, f"cannot verify that {what} are encrypted: {mode.reason}")
                break
            if mode in (ABSENT, None, "") or str(mode).upper() == "DISABLED":
                state = "not set (DISABLED)" if mode in (ABSENT, None, "") else "DISABLED"
                yield violation(path, f"{what} are not encrypted: the encryption mode is {state}")
                break


GLUE_ATTACHMENT = {GLUE_JOB: "SecurityConfiguration", GLUE_CRAWLER: "CrawlerSecurityConfiguration",
                   GLUE_DEV_ENDPOINT: "SecurityConfiguration"}


@rule("DP-GlueSecurityConfigurationAttached", clause=7, severity="error", types=list(GLUE_ATTACHMENT),
      title="Glue jobs, crawlers and development endpoints use a security configuration of the app",
      rationale="Clause 7: all data at rest encrypted. Glue jobs, crawlers and development endpoints "
                "write S3 output, CloudWatch logs and job bookmarks unencrypted by Glue unless a "
                "security configuration (SecurityConfiguration, or CrawlerSecurityConfiguration for "
                "crawlers) names one. It must be an AWS::Glue::SecurityConfiguration of the scanned "
                "templates, by Ref or by Name, which DP-GlueSecurityConfigurationEncrypted judges; "
                "a name defined elsewhere is unverifiable.",
      remediation="glue.CfnJob(self, 'Etl', ..., security_configuration=glue_encryption.ref)  "
                  "# glue_encryption = glue.CfnSecurityConfiguration(...)")
def glue_security_configuration_attached(r, t):
    prop = GLUE_ATTACHMENT[r.type]
    yield from _attached(r, prop, GLUE_SECURITY, "Name", "Glue security configuration",
                         f"set {prop} to an AWS::Glue::SecurityConfiguration that encrypts S3, logs and "
                         f"bookmarks")


@rule("DP-GlueCatalogEncrypted", clause=7, severity="error", types=[GLUE_CATALOG_SETTINGS],
      title="The Glue Data Catalog and its connection passwords are encrypted with KMS",
      rationale="Clause 7: all data at rest encrypted, secrets with an added layer. The Data "
                "Catalog stores table metadata and connection definitions unencrypted unless "
                "EncryptionAtRest.CatalogEncryptionMode is SSE-KMS (or SSE-KMS-WITH-SERVICE-ROLE); "
                "connection passwords are returned in clear text to anyone who may read a "
                "connection unless ConnectionPasswordEncryption.ReturnConnectionPasswordEncrypted "
                "is true. Both default to off.",
      remediation="glue.CfnDataCatalogEncryptionSettings(self, 'CatalogEncryption', catalog_id=self.account,\n"
                  "    data_catalog_encryption_settings={'EncryptionAtRest': {'CatalogEncryptionMode': 'SSE-KMS', "
                  "'SseAwsKmsKeyId': key.key_id},\n"
                  "        'ConnectionPasswordEncryption': {'ReturnConnectionPasswordEncrypted': True, "
                  "'KmsKeyId': key.key_id}})")
def glue_catalog_encrypted(r, t):
    base = "DataCatalogEncryptionSettings"
    for path, mode in leaves(r, f"{base}.EncryptionAtRest.CatalogEncryptionMode"):
        if isinstance(mode, Unknown):
            yield unverifiable(path, f"cannot verify that the catalog is encrypted: {mode.reason}")
        elif not (isinstance(mode, str) and mode.upper().startswith("SSE-KMS")):
            state = "not set (DISABLED)" if mode is ABSENT else repr(mode)
            yield violation(path, f"the Data Catalog is not encrypted at rest: CatalogEncryptionMode is {state}")
    for path, value in leaves(r, f"{base}.ConnectionPasswordEncryption.ReturnConnectionPasswordEncrypted"):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that connection passwords are encrypted: {value.reason}")
        elif as_bool(value) is not True:
            yield violation(path, "connection passwords are kept and returned in clear text; set "
                                  "ReturnConnectionPasswordEncrypted true")


GLUE_PASSWORD_KEYS = ("PASSWORD", "KAFKA_SASL_PLAIN_PASSWORD", "KAFKA_SASL_SCRAM_PASSWORD",
                      "KAFKA_CLIENT_KEYSTORE_PASSWORD", "KAFKA_CLIENT_KEY_PASSWORD")


@rule("DP-GlueConnectionNoLiteralPassword", clause=2, severity="error", types=[GLUE_CONNECTION],
      title="Glue connections take passwords from Secrets Manager, not the template",
      rationale="Clause 2: no shared credentials in plain sight. A PASSWORD (or Kafka SASL or "
                "keystore password) written in ConnectionInput.ConnectionProperties, or passed from "
                "a parameter without NoEcho, is visible to everyone who can read the template, the "
                "stack or the connection. Accepted: SECRET_ID naming a Secrets Manager secret (the "
                "preferred option, no password at all), a {{resolve:secretsmanager:...}} or "
                "SecureString reference, or a NoEcho parameter without default.",
      remediation="glue.CfnConnection(self, 'Jdbc', catalog_id=self.account, connection_input={\n"
                  "    'ConnectionType': 'JDBC', 'ConnectionProperties': {'JDBC_CONNECTION_URL': url, "
                  "'SECRET_ID': secret.secret_name}})")
def glue_connection_no_literal_password(r, t):
    for key in GLUE_PASSWORD_KEYS:
        for path, node in raw_values(r, f"ConnectionInput.ConnectionProperties.{key}"):
            sources = [("unknown", node.reason)] if isinstance(node, Unknown) else secret_sources(node, r.template)
            yield from source_outcomes(path, f"the connection's {key}", sources)


KERBEROS_PASSWORDS = ("KdcAdminPassword", "CrossRealmTrustPrincipalPassword", "ADDomainJoinPassword")


@rule("DP-EmrNoLiteralKerberosPassword", clause=2, severity="error", types=[EMR_CLUSTER],
      title="EMR Kerberos passwords are not written in templates",
      rationale="Clause 2: no shared credentials in plain sight. The KDC admin, cross-realm trust "
                "and AD domain-join passwords of KerberosAttributes give control over every "
                "principal of the cluster's realm; written in the template or passed from a "
                "parameter without NoEcho, they are visible to everyone who can read the template "
                "or the stack. Accepted: a {{resolve:secretsmanager:...}} or SecureString reference, "
                "or a NoEcho parameter without default.",
      remediation="emr.CfnCluster(self, 'Cluster', ..., kerberos_attributes=emr.CfnCluster.KerberosAttributesProperty(\n"
                  "    realm='EC2.INTERNAL', kdc_admin_password=SecretValue.secrets_manager('emr-kdc').unsafe_unwrap()))")
def emr_no_literal_kerberos_password(r, t):
    for key in KERBEROS_PASSWORDS:
        for path, node in raw_values(r, f"KerberosAttributes.{key}"):
            sources = [("unknown", node.reason)] if isinstance(node, Unknown) else secret_sources(node, r.template)
            yield from source_outcomes(path, f"the Kerberos {key}", sources)

"""Data services outside the big database families: MemoryDB (TLS, clause 3; keys, clause 7),
Athena query results (clause 7), SES outbound mail (TLS, clause 3), and the audit records of
CloudTrail Lake and AWS Config (clause 9).

Trails are judged in logging.py; keys for the stores of governance.py's DATA_STORES there.
"""
from __future__ import annotations

from ..engine.checks import is_set, leaves, require
from ..engine.findings import unverifiable, violation
from ..engine.values import ABSENT, Unknown, as_bool, as_text
from . import rule
from .streaming import key_outcomes

MEMORYDB = "AWS::MemoryDB::Cluster"
MEMORYDB_MULTI_REGION = "AWS::MemoryDB::MultiRegionCluster"
ATHENA_WORKGROUP = "AWS::Athena::WorkGroup"
SES_CONFIGURATION_SET = "AWS::SES::ConfigurationSet"
EVENT_DATA_STORE = "AWS::CloudTrail::EventDataStore"
CONFIG_DELIVERY = "AWS::Config::DeliveryChannel"

ATHENA_ENCRYPTION_OPTIONS = ("SSE_S3", "SSE_KMS", "CSE_KMS")
WORKGROUP = "WorkGroupConfiguration"


def _word(value) -> str | None:
    text = as_text(value) if not isinstance(value, bool) else None
    return text.strip().upper() if text is not None else None


# ---------------------------------------------------------------- MemoryDB

@rule("DP-MemoryDbTls", clause=3, severity="error", types=[MEMORYDB, MEMORYDB_MULTI_REGION],
      title="MemoryDB clusters encrypt client connections with TLS",
      rationale="Clause 3: data in transit is encrypted. MemoryDB turns in-transit encryption on "
                "unless TLSEnabled is false, and it cannot be turned on after the cluster is "
                "created; false lets clients read and write the data set in plain text. Absence "
                "passes (AWS's default is secure).",
      remediation="memorydb.CfnCluster(self, 'Store', cluster_name='orders', node_type='db.r7g.large',\n"
                  "    acl_name=acl.acl_name, tls_enabled=True, ...)")
def memorydb_tls(r, t):
    yield from require(r, "TLSEnabled", lambda v: v is ABSENT or as_bool(v) is True,
                       "clients connect in plain text (TLSEnabled is false); TLS can only be chosen when "
                       "the cluster is created, so recreate it with TLSEnabled true")


@rule("DP-MemoryDbCmk", clause=7, severity="error", types=[MEMORYDB],
      title="MemoryDB clusters encrypt with a KMS key in our account (customer managed for confidential data)",
      rationale="Clause 7: cryptographic material is accessible only to our processes. MemoryDB "
                "always encrypts data at rest, but without KmsKeyId it uses an AWS-owned key we "
                "cannot see, audit or revoke: always a violation, as for DynamoDB and Amazon MQ. A key "
                "in our account that AWS manages is enough for data tagged public or internal, as "
                "DP-ConfidentialDataCmk decides for every data store; confidential, restricted and "
                "untagged data (the data-classification tag in the cluster's Tags) needs a "
                "customer-managed key.",
      remediation="memorydb.CfnCluster(self, 'Store', kms_key_id=key.key_arn,\n"
                  "    tags=[CfnTag(key='data-classification', value='confidential'), "
                  "CfnTag(key='data-owner', value='orders-team')], ...)")
def memorydb_cmk(r, t):
    for path, key in leaves(r, "KmsKeyId"):
        if key is ABSENT:
            yield violation(path, "KmsKeyId is not set, so MemoryDB encrypts with an AWS-owned key we cannot "
                                  "audit or revoke; set a customer-managed key")
        else:
            yield from key_outcomes(r, path, key, "")


# ---------------------------------------------------------------- Athena

def _managed_results(r) -> bool | Unknown:
    """Are query results kept by Athena itself (always encrypted) in every variant?"""
    unknown: bool | Unknown = False
    for _, enabled in leaves(r, f"{WORKGROUP}.ManagedQueryResultsConfiguration.Enabled"):
        if isinstance(enabled, Unknown):
            unknown = enabled
        elif as_bool(enabled) is not True:
            return False
    return unknown if isinstance(unknown, Unknown) else True


@rule("DP-AthenaResultsEncrypted", clause=7, severity="error", types=[ATHENA_WORKGROUP],
      title="Athena workgroups encrypt query results and enforce their configuration",
      rationale="Clause 7: all data at rest encrypted. Query results are copies of the data the "
                "queries read. A workgroup must say how results are encrypted "
                "(ResultConfiguration.EncryptionConfiguration.EncryptionOption SSE_S3, SSE_KMS or "
                "CSE_KMS; Athena sets none by default, leaving it to the output bucket), unless Athena "
                "keeps the results itself (ManagedQueryResultsConfiguration, always encrypted). And "
                "EnforceWorkGroupConfiguration must be true, or each client's own settings, "
                "unencrypted ones included, win; the API documents no default, so it must be set.",
      remediation="athena.CfnWorkGroup(self, 'Analysts', name='analysts', work_group_configuration="
                  "athena.CfnWorkGroup.WorkGroupConfigurationProperty(\n"
                  "    enforce_work_group_configuration=True,\n"
                  "    result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(output_location=results_url,\n"
                  "        encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(\n"
                  "            encryption_option='SSE_KMS', kms_key=key.key_arn))))")
def athena_results_encrypted(r, t):
    managed = _managed_results(r)
    if managed is not True:
        path_of = f"{WORKGROUP}.ResultConfiguration.EncryptionConfiguration.EncryptionOption"
        for path, option in leaves(r, path_of):
            if isinstance(option, Unknown):
                yield unverifiable(path, f"cannot verify that query results are encrypted: {option.reason}")
            elif _word(option) not in ATHENA_ENCRYPTION_OPTIONS:
                if option is ABSENT and isinstance(managed, Unknown):
                    yield unverifiable(path, "no EncryptionOption, and whether Athena manages the results "
                                             f"cannot be known: {managed.reason}")
                elif option is ABSENT:
                    yield violation(path, "the workgroup does not encrypt query results (no EncryptionOption); "
                                          "set SSE_KMS, CSE_KMS or SSE_S3")
                else:
                    yield violation(path, f"EncryptionOption {option!r} is not one of "
                                          f"{', '.join(ATHENA_ENCRYPTION_OPTIONS)}")
    yield from require(r, f"{WORKGROUP}.EnforceWorkGroupConfiguration", lambda v: as_bool(v) is True,
                       "EnforceWorkGroupConfiguration is not true, so clients may override the workgroup's "
                       "result location and encryption")


# ---------------------------------------------------------------- SES

@rule("DP-SesTlsRequired", clause=3, severity="error", types=[SES_CONFIGURATION_SET],
      title="SES configuration sets deliver mail only over TLS",
      rationale="Clause 3: data in transit is encrypted. SES sends mail with TLS when the receiving "
                "server offers it; with DeliveryOptions.TlsPolicy OPTIONAL, the default when it is "
                "not set, it sends in plain text to servers that do not. REQUIRE makes SES refuse to "
                "deliver without TLS.",
      remediation="ses.ConfigurationSet(self, 'Mail', tls_policy=ses.ConfigurationSetTlsPolicy.REQUIRE)")
def ses_tls_required(r, t):
    for path, policy in leaves(r, "DeliveryOptions.TlsPolicy"):
        if isinstance(policy, Unknown):
            yield unverifiable(path, f"cannot verify that mail is sent only over TLS: {policy.reason}")
        elif policy is ABSENT:
            yield violation(path, "TlsPolicy is not set, so SES uses OPTIONAL and sends mail in plain text when "
                                  "the receiving server offers no TLS; set REQUIRE")
        elif _word(policy) != "REQUIRE":
            yield violation(path, f"TlsPolicy {policy!r} lets SES send mail in plain text; set REQUIRE")


# ---------------------------------------------------------------- audit records

@rule("DP-CloudTrailLakeKms", clause=9, severity="error", types=[EVENT_DATA_STORE],
      title="CloudTrail Lake event data stores are encrypted with a KMS key",
      rationale="Clause 9: logs are accessible only privately by us. As for trails "
                "(DP-CloudTrailKms), an event data store without KmsKeyId is encrypted with a key "
                "CloudTrail owns, so the audit record's readers are decided by IAM alone; a "
                "customer-managed key's policy adds who may decrypt it, and its use is itself logged.",
      remediation="cloudtrail.CfnEventDataStore(self, 'Lake', name='audit-lake', kms_key_id=key.key_arn, ...)")
def cloudtrail_lake_kms(r, t):
    yield from require(r, "KmsKeyId", is_set,
                       "the event data store is encrypted with a CloudTrail-owned key (no KmsKeyId); set "
                       "KmsKeyId to a customer-managed key")


@rule("DP-CloudTrailLakeTerminationProtection", clause=9, severity="error", types=[EVENT_DATA_STORE],
      title="CloudTrail Lake event data stores keep termination protection",
      rationale="Clause 9: logs are protected from tampering throughout their lifecycle. Deleting an "
                "event data store deletes the audit events in it; termination protection (on unless "
                "TerminationProtectionEnabled is false) makes deletion a two-step act. Absence passes.",
      remediation="cloudtrail.CfnEventDataStore(self, 'Lake', termination_protection_enabled=True, ...)")
def cloudtrail_lake_termination_protection(r, t):
    yield from require(r, "TerminationProtectionEnabled", lambda v: v is ABSENT or as_bool(v) is True,
                       "termination protection is off (TerminationProtectionEnabled false), so the audit "
                       "events can be deleted with the data store in one step")


@rule("DP-ConfigDeliveryKms", clause=9, severity="warning", types=[CONFIG_DELIVERY],
      title="AWS Config delivers configuration history encrypted with a KMS key",
      rationale="Clause 9: logs are accessible only privately by us. Configuration history and "
                "snapshots are an audit record of every resource, like CloudTrail logs "
                "(DP-CloudTrailKms). Without S3KmsKeyArn they get the bucket's default encryption "
                "(SSE-S3 at least), which anyone who can read the bucket can decrypt. A warning: the "
                "bucket's own rules still apply.",
      remediation="config.CfnDeliveryChannel(self, 'Delivery', s3_bucket_name=bucket.bucket_name, "
                  "s3_kms_key_arn=key.key_arn)")
def config_delivery_kms(r, t):
    yield from require(r, "S3KmsKeyArn", is_set,
                       "configuration history is delivered without KMS encryption (no S3KmsKeyArn); set "
                       "S3KmsKeyArn to a customer-managed key")
